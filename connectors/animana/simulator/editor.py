"""An Animana user at work beside VetConnect: edits made on the Animana side (`POST /_sim/edit`, and the
concurrent editor that changes a record just after VetConnect wrote it), journaled and listed in `store.edits`.

The concurrent editor changes fields staff really do change in passing — an appointment's reason or its
cancellation, a client's phone or town, a consult's plan — so write-back meets overlapping edits of the kind it
must settle. Invoices are not edited: once issued, a Dutch invoice is corrected by a credit note, not changed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .store import Operation, PracticeCache, PracticeStore, replay
from .world import Record

REASONS = ("controle", "jeuk", "hoest", "kreupel", "vaccinatie", "gebitscontrole", "oorontsteking", "braken")
TOWNS = ("Utrecht", "Amersfoort", "Zeist", "Houten", "Nieuwegein", "IJsselstein", "Bunnik", "Maarssen")
COLOURS = ("zwart", "bruin", "grijs", "wit", "rood", "cyperse", "lapjes")
PLAN_NOTES = ("Eigenaar telefonisch gesproken.", "Over twee weken controle.", "Uitslag lab nabellen.")
INSTRUCTIONS = ("1x daags 1 tablet met voer", "2x daags 1 tablet", "1x daags 5 druppels in het oor")


def apply_edit(
    cache: PracticeCache,
    store: PracticeStore,
    resource: str,
    record_id: int,
    changes: dict[str, Any],
    origin: str,
) -> Record:
    """Apply and journal an Animana-side edit; call inside `cache.run` (the practice lock is held)."""
    op = Operation("edit", (resource, record_id, changes, origin))
    record: Record = replay(store, op)
    cache.journal(store.practice_id, op)
    return record


def _agenda(rng: random.Random, record: Record) -> dict[str, Any]:
    if record.get("status") == "booked" and rng.random() < 0.3:
        return {"status": "cancelled"}
    return {"reason": rng.choice([r for r in REASONS if r != record.get("reason")])}


def _relation(rng: random.Random, record: Record) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"phone": f"06-{rng.randint(10000000, 99999999)}"}
    return {"city": rng.choice([t for t in TOWNS if t != record.get("city")])}


def _animal(rng: random.Random, record: Record) -> dict[str, Any]:
    return {"colour": rng.choice([c for c in COLOURS if c != record.get("colour")])}


def _consult(rng: random.Random, record: Record) -> dict[str, Any]:
    soap = dict(record.get("soap") or {})
    soap["plan"] = " ".join(p for p in (soap.get("plan"), rng.choice(PLAN_NOTES)) if p)
    return {"soap": soap}


def _vaccination(rng: random.Random, record: Record) -> dict[str, Any]:
    return {"batch_number": f"B{rng.randint(100000, 999999)}"}


def _prescription(rng: random.Random, record: Record) -> dict[str, Any]:
    return {"instructions": rng.choice([i for i in INSTRUCTIONS if i != record.get("instructions")])}


def _payment(rng: random.Random, record: Record) -> dict[str, Any]:
    return {"method": rng.choice([m for m in ("cash", "pin", "transfer") if m != record.get("method")])}


EDITORS: dict[str, Callable[[random.Random, Record], dict[str, Any]]] = {
    "agenda": _agenda,
    "relations": _relation,
    "animals": _animal,
    "consults": _consult,
    "vaccinations": _vaccination,
    "prescriptions": _prescription,
    "payments": _payment,
}


def random_edit(rng: random.Random, resource: str, record: Record) -> dict[str, Any] | None:
    """The fields an Animana user changes on `record`, or None for a resource nobody edits (invoices)."""
    editor = EDITORS.get(resource)
    return editor(rng, record) if editor else None
