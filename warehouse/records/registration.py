"""Registering a patient for its owners: the validators of the registration form, the microchip checks, and the
registration itself.

Every field is checked before anything is written, each refusal a ``RecordsError`` at its form field. A chip is
unique among the practice's live patients (the service says whose chip it is; a unique index, migration 0400,
holds against a concurrent registration too). A chip known at another practice of the franchise is pointed out by
that practice's name only (``microchip_known_in_franchise``): registering it here is allowed, since an animal
may well be seen at two practices. The write goes through the gateway like any other (issue 15): in animana mode
it reaches Animana before it commits here, with its owners (the outbox reads them from ``client_patient``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.kernel.validation import InvalidMicrochip, normalise_microchip
from warehouse.records.breeds import known_breed, require_species, species_label
from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

MAX_NAME_LENGTH = 100  # patient.name, patient.colour
MAX_AGE_YEARS = 150  # tortoises and parrots outlive the rest; anything older is a typed year gone wrong
MAX_OWNERS = 4  # what Animana keeps on an animal
SEXES = ("male", "female", "unknown")
CHIP_CONSTRAINT = "uq_patient_microchip"


@dataclass(frozen=True)
class EstimatedAge:
    """The age the owner gives when the date of birth is not known ("about 3 years and 6 months")."""

    years: int
    months: int = 0


@dataclass(frozen=True)
class NewPatient:
    """What the registration form holds. ``owner_ids``: the owners' client ids, the primary owner first."""

    name: str
    species: str
    sex: str  # male | female | unknown
    neutered: bool
    owner_ids: Sequence[int]
    breed: str | None = None
    born: dt.date | EstimatedAge | None = None
    colour: str | None = None
    microchip: str | None = None


@dataclass(frozen=True)
class ChipCheck:
    chip: str  # the 15 digits
    known_at: tuple[str, ...]  # the other practices of the franchise where a live patient has it

    @property
    def pointer(self) -> str | None:
        """What the form shows beside the chip, or None."""
        return f"This chip is known at {', '.join(self.known_at)}." if self.known_at else None


@dataclass(frozen=True)
class RegisteredPatient:
    practice_id: int
    id: int
    name: str
    chip: ChipCheck | None


# --- the validators (pure, property-tested) -------------------------------------------------------------------


def patient_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise RecordsError("name", "Type the patient's name.")
    if len(name) > MAX_NAME_LENGTH:
        raise RecordsError("name", f"Keep the name to {MAX_NAME_LENGTH} characters.")
    return name


def colour(raw: str | None) -> str | None:
    value = optional_text(" ".join((raw or "").split()))
    if value is not None and len(value) > MAX_NAME_LENGTH:
        raise RecordsError("colour", f"Keep the colour to {MAX_NAME_LENGTH} characters.")
    return value


def sex_code(sex: str | None, neutered: bool) -> str:
    """The stored sex: ``male``, ``female``, ``male_neutered``, ``female_neutered`` or ``unknown``."""
    if sex not in SEXES:
        raise RecordsError("sex", "Choose the sex (or unknown).")
    if sex == "unknown":
        if neutered:
            raise RecordsError("neutered", "Choose the sex of a neutered animal.")
        return sex
    return f"{sex}_neutered" if neutered else sex


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` earlier, or that month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def birth_date(born: dt.date | EstimatedAge | None, today: dt.date) -> tuple[dt.date | None, bool]:
    """(date of birth, whether it is estimated). An estimated age counts back from today."""
    if born is None:
        return None, False
    if isinstance(born, EstimatedAge):
        if not (0 <= born.years <= MAX_AGE_YEARS):
            raise RecordsError("age", f"Give an age between 0 and {MAX_AGE_YEARS} years.")
        if not (0 <= born.months <= 11):
            raise RecordsError("age", "Give the months as 0 to 11 (12 months is a year).")
        if born.years == born.months == 0:
            raise RecordsError("age", "Give the estimated age (at least one month), or the date of birth.")
        return months_before(today, born.years * 12 + born.months), True
    if born > today:
        raise RecordsError("date_of_birth", "The date of birth cannot be in the future.")
    if born < months_before(today, MAX_AGE_YEARS * 12):
        raise RecordsError("date_of_birth", f"That is more than {MAX_AGE_YEARS} years ago; check the year.")
    return born, False


def microchip(raw: str | None) -> str | None:
    """The 15 digits of an ISO 11784 chip as typed (spaces, dots and dashes allowed), or None when left empty."""
    if not (raw or "").strip():
        return None
    try:
        return normalise_microchip(raw or "")
    except InvalidMicrochip as exc:
        message = str(exc)
        raise RecordsError("microchip", f"{message[0].upper()}{message[1:]}.") from None


# --- the checks against the database ---------------------------------------------------------------------------


def _chip_holder(session: Session, practice_id: int, chip: str) -> Patient | None:
    return session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id, Patient.microchip == chip, Patient.deleted_at.is_(None)
        )
    )


def _taken(holder: Patient) -> RecordsError:
    return RecordsError(
        "microchip",
        f"This chip is already registered here for {holder.name} ({species_label(holder.species)}"
        f"{', deceased' if holder.deceased else ''}).",
    )


def check_microchip(session: Session, practice_id: int, raw: str | None) -> ChipCheck | None:
    """The typed chip normalised and checked: refused when invalid or already on a live patient of the practice;
    otherwise with the other practices of the franchise that know it (their names only). None when empty."""
    chip = microchip(raw)
    if chip is None:
        return None
    holder = _chip_holder(session, practice_id, chip)
    if holder is not None:
        raise _taken(holder)
    known_at = session.scalars(
        text("SELECT microchip_known_in_franchise(:p, :chip)"), {"p": practice_id, "chip": chip}
    ).all()
    return ChipCheck(chip, tuple(known_at))


def _owners(session: Session, practice_id: int, owner_ids: Sequence[int]) -> list[int]:
    """The owners, the primary first, each once; refused unless each is a client of the practice."""
    owners = list(dict.fromkeys(owner_ids))
    if not owners:
        raise RecordsError("owners", "Choose the owner.")
    if len(owners) > MAX_OWNERS:
        raise RecordsError("owners", f"A patient has at most {MAX_OWNERS} owners.")
    found = set(
        session.scalars(
            select(Client.id).where(
                Client.practice_id == practice_id, Client.id.in_(owners), Client.deleted_at.is_(None)
            )
        )
    )
    if missing := [o for o in owners if o not in found]:
        raise RecordsError("owners", f"Client {missing[0]} is not a client of this practice.")
    return owners


def register_patient(
    session: Session, actor: Actor, *, practice_id: int, patient: NewPatient, today: dt.date
) -> RegisteredPatient:
    """Register ``patient`` with its owners (the first is the primary owner, the one invoiced). Every field is
    checked first, in the form's order; nothing is written unless all pass."""
    require(actor, CLIENTS_WRITE, practice_id)
    name = patient_name(patient.name)
    species = require_species(patient.species)
    breed = None
    if typed_breed := optional_text(patient.breed):
        breed = known_breed(session, practice_id, species, typed_breed)
        if breed is None:
            raise RecordsError(
                "breed",
                f"{typed_breed} is not on the {species_label(species)} list; add it to the list first.",
            )
    sex = sex_code(patient.sex, patient.neutered)
    date_of_birth, estimated = birth_date(patient.born, today)
    patient_colour = colour(patient.colour)
    chip = check_microchip(session, practice_id, patient.microchip)
    owners = _owners(session, practice_id, patient.owner_ids)

    row = Patient(
        practice_id=practice_id, name=name, species=species, breed=breed, sex=sex, date_of_birth=date_of_birth,
        date_of_birth_estimated=estimated, colour=patient_colour, microchip=chip.chip if chip else None,
    )  # fmt: skip
    session.add(row)
    try:
        # No savepoint: releasing one runs the gateway's write-through (before_commit fires for savepoints too),
        # which would send the patient to Animana before its owners are written.
        session.flush()
    except IntegrityError as exc:
        if CHIP_CONSTRAINT not in str(exc.orig):
            raise
        raise RecordsError(
            "microchip", "This chip was registered here a moment ago; search for it."
        ) from None
    session.add_all(
        ClientPatient(practice_id=practice_id, client_id=owner, patient_id=row.id, is_primary=index == 0)
        for index, owner in enumerate(owners)
    )
    session.flush()
    return RegisteredPatient(practice_id, row.id, name, chip)
