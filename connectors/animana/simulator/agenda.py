"""The agenda, day by day, and what happens to each visit: who is booked when, with whom, and who shows up.

New visits (phoned in, or walk-ins booked at the desk), follow-ups and vaccination boosters planned from
earlier visits; reception books the vet with the fewest patients that day; no-shows that get likelier with lead
time and with the client's own habits. A visit that took place hands over to the clinical record.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random

from .catalog.animals import SPECIES
from .catalog.clinical import APPOINTMENT_MINUTES, EUTHANASIA, FOLLOW_UP, REASON_BY_TEXT, REASONS, Reason
from .catalog.products import VACCINES_BY_SPECIES
from .clock import AMSTERDAM, TS_FORMAT, ts
from .consults import ClinicalRecord, PlannedVisit
from .sampling import poisson, weighted
from .world import PracticeWorld, Record

VET_DAY_CAPACITY = 24  # patients a vet sees at most in a day: the rest of the shift is phone, surgery, notes
WALK_IN_SHARE = 0.12  # of the visits nobody planned: the client walks in and is booked at the desk
SAME_DAY_CALL_MINUTES = 30  # mean wait after opening before a same-day appointment is phoned in
NO_SHOW_AFTER = dt.timedelta(minutes=15)  # how long reception waits before marking a no-show
AGENDA_HORIZON = dt.timedelta(days=42)  # how far past the anchor day the agenda (and the roster) reaches


class Agenda:
    def __init__(self, world: PracticeWorld, clinical_record: ClinicalRecord) -> None:
        self.world = world
        self.clinical_record = clinical_record
        animals = world.out["animals"]
        self.animal_by_id = {a["id"]: a for a in animals}
        # Per animal: the days it can come in (registered .. deceased).
        self.animal_active = {
            a["id"]: (
                dt.datetime.strptime(a["created_at"], TS_FORMAT).date(),
                dt.date.fromisoformat(a["deceased_on"]) if a["deceased_on"] else dt.date.max,
            )
            for a in animals
        }
        # (resource type, resource id, day) -> the quarter-hours taken, so the agenda has no double bookings.
        self.occupied: dict[tuple[str, int, dt.date], set[int]] = {}
        self.vet_load: dict[tuple[int, dt.date], int] = {}  # (vet, day) -> patients booked
        self.no_show_history: dict[int, int] = {}  # per relation: no-shows so far

    def fill(self) -> None:
        """Walk the days from the start of the history to the end of the horizon, booking and seeing visits."""
        rng = self.world.rng("agenda")
        clinical = self.world.rng("clinical")
        animals = self.world.out["animals"]
        species_factor = {s[0]: s[2] for s in SPECIES}
        # Planned visits: (day, seq, animal_id, reason_text, booked_at or None, kind)
        pending: list[tuple[dt.date, int, int, str, dt.datetime | None, str]] = []
        seq = 0
        for animal in animals:
            if animal["deceased_on"] and rng.random() < 0.6:
                day = dt.date.fromisoformat(animal["deceased_on"])
                heapq.heappush(pending, (day, seq, animal["id"], "euthanasie", None, "euthanasia"))
                seq += 1
            # Vaccination history before the window: a booster falls due somewhere in the first year.
            if animal["species"] in VACCINES_BY_SPECIES and rng.random() < 0.7:
                day = self.world.start.date() + dt.timedelta(days=rng.randint(0, 365))
                heapq.heappush(pending, (day, seq, animal["id"], "jaarlijkse vaccinatie", None, "booster"))
                seq += 1
        last_day = self.world.anchor_day + AGENDA_HORIZON
        day = self.world.start.date()
        years = self.world.config.history_years
        while day <= last_day:
            weekday = self.world.opening_weekday(day)
            if weekday is None:
                day += dt.timedelta(days=1)
                continue
            weekday_factor = [1.15, 1.0, 1.0, 0.95, 1.05, 0.4][weekday]
            season = 1 + 0.12 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365.25)
            growth = 1 + 0.05 * ((day - self.world.start.date()).days / 365.25 - years / 2)
            visits: list[tuple[int, str, dt.datetime | None, str]] = []
            while pending and pending[0][0] <= day:
                _, _, animal_id, reason_text, booked_at, kind = heapq.heappop(pending)
                visits.append((animal_id, reason_text, booked_at, kind))
            for _ in range(
                poisson(rng, self.world.scale.appointments_per_day * weekday_factor * season * growth)
            ):
                for _attempt in range(6):
                    animal = animals[rng.randrange(len(animals))]
                    lo, hi = self.animal_active[animal["id"]]
                    if lo <= day <= hi and rng.random() < species_factor[animal["species"]] / 1.3:
                        visits.append((animal["id"], "", None, "new"))
                        break
            for animal_id, reason_text, booked_at, kind in visits:
                # Each visit draws from its own generator, so how far the anchor day has progressed (which
                # visits are booked yet, which are done) does not change the rest of that day's agenda.
                visit_rng = random.Random(rng.getrandbits(64))
                follow = self._visit(
                    visit_rng, clinical, day, weekday, animal_id, reason_text, booked_at, kind
                )
                for entry in follow:
                    heapq.heappush(pending, (entry[0], seq, *entry[1:]))
                    seq += 1
            day += dt.timedelta(days=1)

    def _pick_reason(self, rng: random.Random, animal: Record, day: dt.date) -> Reason:
        age = (day - dt.date.fromisoformat(animal["date_of_birth"])).days / 365.25
        options = [
            r
            for r in REASONS
            if (not r.species or animal["species"] in r.species)
            and age >= r.min_age_years
            and (r.sex is None or animal["gender"] == r.sex)  # neutering: intact animals only
        ]
        season = 1 + 0.5 * math.sin(
            2 * math.pi * (day.timetuple().tm_yday - 60) / 365.25
        )  # spring: vaccines, ticks
        weights = [r.weight * (season if r.appointment_type == "vaccinatie" else 1.0) for r in options]
        return weighted(rng, options, weights)

    def _slot(
        self,
        rng: random.Random,
        key: tuple[str, int],
        day: dt.date,
        weekday: int,
        minutes: int,
        surgery: bool,
    ) -> int | None:
        """A free quarter-hour start for a resource (so the agenda has no double bookings), or None when the
        day has no room left for `minutes`."""
        taken = self.occupied.setdefault((key[0], key[1], day), set())
        if weekday == 5:
            first, last = 36, 47  # Saturday 09:00-12:00
        elif surgery:
            first, last = 34, 44  # surgery in the morning
        else:
            first, last = 34, 70  # 08:30-17:30
        n = max(1, math.ceil(minutes / 15))
        start = rng.randint(first, last)  # usually free: try one guess before listing the free starts
        if start in taken or not taken.isdisjoint(range(start + 1, start + n)):
            free = [
                s for s in range(first, last + 1) if s not in taken and taken.isdisjoint(range(s + 1, s + n))
            ]
            if not free:
                return None
            start = rng.choice(free)
        taken.update(range(start, start + n))
        return start

    def _visit(
        self,
        rng: random.Random,
        clinical: random.Random,
        day: dt.date,
        weekday: int,
        animal_id: int,
        reason_text: str,
        booked_at: dt.datetime | None,
        kind: str,
    ) -> list[PlannedVisit]:
        follow: list[PlannedVisit] = []
        animal = self.animal_by_id[animal_id]
        lo, hi = self.animal_active[animal_id]
        if not lo <= day <= hi:
            return follow
        if kind in ("booster", "follow_up", "rebook") and rng.random() > {
            "booster": 0.78,
            "follow_up": 0.85,
        }.get(kind, 0.5):
            return follow  # the client did not come back; realistic attrition
        if kind == "euthanasia":
            reason = EUTHANASIA
        elif kind == "follow_up":
            reason = FOLLOW_UP
        elif reason_text:
            reason = REASON_BY_TEXT[reason_text]
        else:
            reason = self._pick_reason(rng, animal, day)
        minutes = APPOINTMENT_MINUTES[reason.appointment_type]
        surgery = reason.needs_room == "operating"
        if surgery:
            vet = self.world.vets[rng.randrange(len(self.world.vets))]
            key = ("room", self.world.operating_room["id"])
            slot = self._slot(rng, key, day, weekday, minutes, surgery)
        else:
            # Reception books the colleague with the fewest patients that day who still has room.
            slot = None
            by_load = sorted(
                self.world.vets, key=lambda v: (self.vet_load.get((v["id"], day), 0), rng.random())
            )
            for vet in by_load:
                if self.vet_load.get((vet["id"], day), 0) >= VET_DAY_CAPACITY:
                    break
                key = ("staff", vet["id"])
                slot = self._slot(rng, key, day, weekday, minutes, surgery)
                if slot is not None:
                    self.vet_load[(vet["id"], day)] = self.vet_load.get((vet["id"], day), 0) + 1
                    break
        if slot is None:
            return follow  # fully booked; the visit simply does not happen
        start = dt.datetime.combine(day, dt.time(slot // 4, (slot % 4) * 15), AMSTERDAM)
        end = start + dt.timedelta(minutes=minutes)
        if booked_at is None:
            if kind == "booster" or surgery:  # a reminder letter, or a planned operation: weeks ahead
                booked_at = start - dt.timedelta(days=rng.randint(5, 30), hours=rng.randint(0, 8))
            elif kind == "new" and rng.random() < WALK_IN_SHARE:
                booked_at = start - dt.timedelta(
                    minutes=rng.randint(2, 12)
                )  # registered at the desk on arrival
            elif kind == "euthanasia" or rng.random() < 0.35:
                # Same day: most clients call when the practice opens, so by mid-morning the day is mostly set.
                opens = dt.datetime.combine(day, dt.time(8, 0), AMSTERDAM)
                called = opens + dt.timedelta(minutes=rng.expovariate(1 / SAME_DAY_CALL_MINUTES))
                booked_at = min(called, start - dt.timedelta(minutes=15))
            elif rng.random() < 0.6:
                booked_at = start - dt.timedelta(days=rng.randint(1, 7), hours=rng.randint(0, 8))
            else:
                booked_at = start - dt.timedelta(days=rng.randint(8, 45), hours=rng.randint(0, 8))
        if booked_at > self.world.anchor:
            return follow  # not booked yet at the moment the data set ends
        owners = animal["relation_ids"]
        relation_id = owners[0] if len(owners) == 1 or rng.random() < 0.7 else owners[1]
        lead_days = (start - booked_at).total_seconds() / 86400
        status = "booked"
        updated = booked_at
        if start > self.world.anchor:
            if rng.random() < 0.03:
                status, updated = "cancelled", booked_at + (self.world.anchor - booked_at) * rng.random()
        elif rng.random() < 0.05:
            status, updated = "cancelled", booked_at + (start - booked_at) * rng.random()
        else:
            history = self.no_show_history.get(relation_id, 0)
            p_no_show = (
                0.02 + 0.0022 * min(lead_days, 60) + self.world.no_show_propensity.get(relation_id, 0.0)
            )
            p_no_show += 0.06 * min(history, 3)
            if kind == "euthanasia" or surgery:
                p_no_show *= 0.2
            if rng.random() < p_no_show:
                # Reception waits a quarter of an hour before marking a no-show; until then it stays booked.
                if start + NO_SHOW_AFTER <= self.world.anchor:
                    status = "no_show"
                    updated = min(
                        self.world.anchor, start + NO_SHOW_AFTER + dt.timedelta(minutes=rng.randint(0, 90))
                    )
                    self.no_show_history[relation_id] = history + 1
                    if rng.random() < 0.5:  # many rebook within the next days
                        follow.append(
                            (
                                day + dt.timedelta(days=rng.randint(2, 10)),
                                animal_id,
                                reason.text if reason.text in REASON_BY_TEXT else "",
                                None,
                                "rebook",
                            )
                        )
            elif end + dt.timedelta(minutes=30) > self.world.anchor:
                status, updated = (
                    "checked_in",
                    start - dt.timedelta(minutes=5),
                )  # in the waiting room or consult
            else:
                status, updated = "done", end + dt.timedelta(minutes=rng.randint(1, 25))
        appointment = self.world.add(
            "agenda",
            {
                "updated_at": ts(min(updated, self.world.anchor)),
                "type": reason.appointment_type,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "resource_type": key[0],
                "resource_id": key[1],
                "animal_id": animal_id,
                "relation_id": relation_id,
                "status": status,
                "reason": reason.text,
                "booked_at": ts(booked_at),
            },
        )
        if status == "done":
            follow += self.clinical_record.consult(clinical, appointment, animal, reason, vet, start, end)
        return follow
