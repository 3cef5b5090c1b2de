"""The breed list a patient's breed is picked from: the seeded breeds of its species plus the ones the practice
added itself (migration 0400 says why a practice's additions are its own and not the franchise's)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.records.errors import RecordsError
from warehouse.schema.clients import SPECIES, PracticeBreed
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

MAX_BREED_LENGTH = 100

_CHOICES = text(
    """SELECT name FROM breed WHERE species = :species
       UNION
       SELECT name FROM practice_breed WHERE practice_id = :p AND species = :species
       ORDER BY 1"""
)


def species_label(species: str) -> str:
    """``guinea_pig`` → ``guinea pig``: how the form and its messages name a species."""
    return species.replace("_", " ")


def require_species(species: str | None) -> str:
    if species not in SPECIES:
        raise RecordsError("species", "Choose the species.")
    return species


def breed_choices(session: Session, practice_id: int, species: str) -> list[str]:
    """The breeds of ``species`` a patient of the practice may have, alphabetically (case-insensitive)."""
    names = session.scalars(_CHOICES, {"p": practice_id, "species": species}).all()
    return sorted(names, key=str.casefold)


def known_breed(session: Session, practice_id: int, species: str, typed: str) -> str | None:
    """The listed breed ``typed`` names, spelled as the list spells it (``labrador retriever`` is the listed
    ``Labrador Retriever``); None when the list has no such breed."""
    wanted = " ".join(typed.split()).casefold()
    return next((b for b in breed_choices(session, practice_id, species) if b.casefold() == wanted), None)


def breed_name(raw: str | None) -> str:
    """A new breed's name as typed, spaces tidied; refused when empty or too long."""
    name = " ".join((raw or "").split())
    if not name:
        raise RecordsError("new_breed", "Type the name of the breed to add.")
    if len(name) > MAX_BREED_LENGTH:
        raise RecordsError("new_breed", f"Keep the breed's name to {MAX_BREED_LENGTH} characters.")
    return name


def add_breed(session: Session, actor: Actor, *, practice_id: int, species: str, name: str) -> str:
    """Add a breed to the practice's own list of ``species``; the name as stored. A breed already on the list
    (in any capitalisation) is refused, so the list never holds one breed twice."""
    require(actor, CLIENTS_WRITE, practice_id)
    species = require_species(species)
    name = breed_name(name)
    existing = known_breed(session, practice_id, species, name)
    if existing is not None:
        raise RecordsError("new_breed", f"{existing} is already on the {species_label(species)} list.")
    session.add(PracticeBreed(practice_id=practice_id, species=species, name=name, added_by=actor.user_id))
    session.flush()
    return name
