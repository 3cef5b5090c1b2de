"""Deterministic generation of one practice's Animana data.

Everything is derived from ``(seed, practice_id, stream)`` RNGs, so a practice's data does not depend on
which practice or resource was requested first, and a practice that was evicted from the cache comes back
byte-identical. A practice is generated as a whole (resources reference each other: consults come from
done appointments, invoices from consults, boosters from vaccinations), but only one practice at a time.

The story per practice: a client base (relations) with pets (animals); a day-by-day agenda with weekday
and seasonal patterns, up to six weeks past the anchor ("now"); new visits (phoned in, or walk-ins booked
at the desk), follow-ups and vaccination boosters planned from earlier visits; reception books the vet with
the fewest patients that day; no-shows that get likelier with lead time and with the client's own habits;
consults, prescriptions, lab results, invoices and payments following from appointments that took place,
with products that fit the patient's species. The anchor's day is always a working day in progress: what
started before the anchor was seen (or not), what comes after is booked, and only what was booked by then.

This module tells the story in order; each chapter has its own: ``world`` (the practice being generated),
``population`` (staff, rooms, price list, clients, pets), ``agenda`` (visits and who shows up), ``consults``
(what follows from a visit) and ``billing`` (invoices, payments). Static vocabulary lives in ``catalog/``.
"""

from __future__ import annotations

import random

from .agenda import AGENDA_HORIZON, Agenda
from .billing import Billing
from .catalog.places import PRACTICE_PREFIXES, PRACTICE_SUFFIXES, PRACTICE_TOWNS
from .config import GeneratorConfig
from .consults import ClinicalRecord
from .names import name_pools
from .population import add_animals, add_products, add_relations, add_rooms, add_staff
from .reminders import generate_reminders
from .shifts import generate_shifts
from .world import PracticeWorld, Record


def practice_ids(count: int) -> list[int]:
    return [1001 + i for i in range(count)]


def practice_info(seed: int, practice_id: int) -> Record:
    rng = random.Random(f"{seed}:{practice_id}:practice")
    town, _ = rng.choice(PRACTICE_TOWNS)
    name = f"{rng.choice(PRACTICE_PREFIXES)} {town} {rng.choice(PRACTICE_SUFFIXES)}"
    return {"id": practice_id, "name": name, "city": town, "country": "NL", "timezone": "Europe/Amsterdam"}


def generate_practice(config: GeneratorConfig, practice_id: int) -> dict[str, list[Record]]:
    """Every resource's records for one practice, generated in the order the story happens."""
    world = PracticeWorld(config, practice_id)
    names = name_pools(config.seed, practice_id)
    add_staff(world, names)
    add_rooms(world)
    add_products(world)
    add_relations(world, names)
    add_animals(world)
    Agenda(world, ClinicalRecord(world, Billing(world))).fill()
    _add_shifts_and_reminders(world)
    return world.out


def _add_shifts_and_reminders(world: PracticeWorld) -> None:
    """The roster and the practice's reminders, which follow from the staff, agenda and clinical record."""
    shifts = generate_shifts(
        world.rng, world.out["staff"], world.out["agenda"], first_day=world.start.date(),
        last_day=world.anchor_day + AGENDA_HORIZON, anchor=world.anchor, opening_weekday=world.opening_weekday,
    )  # fmt: skip
    for shift in shifts:
        world.add("shifts", shift)
    reminders = generate_reminders(
        world.rng("reminders"), relations=world.out["relations"], animals=world.out["animals"],
        consults=world.out["consults"], vaccinations=world.out["vaccinations"],
        prescriptions=world.out["prescriptions"], anchor=world.anchor,
    )  # fmt: skip
    for reminder in reminders:
        world.add("reminders", reminder)
