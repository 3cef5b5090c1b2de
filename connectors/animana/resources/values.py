"""Value rules the read mappings share (each resource's own rules are in its module).

- Ids become text ``animana_id``s; staff and rooms/equipment share the warehouse ``resource`` table, so their ids
  are namespaced (``staff:12``, ``resource:3``) — the agenda's ``resource_type`` picks the namespace.
- Species outside the warehouse list → ``other`` (patients and the products made for them alike).
- Money stays integer cents; VAT percent → basis points (21 → 2100). Quantities become `Decimal`.
- A day without a time is midnight in Amsterdam.
- Write-back (`spec.WriteBack`) inverts these: warehouse values become the JSON the listing returns — times of
  the practice's day (appointments, consults) in Amsterdam time with the offset, days as ISO dates, local ids as Animana's integer ids.
- A record that cannot become a valid row (e.g. a zero payment, which the warehouse forbids) is rejected with a
  reason (`MappingError`); mapping never raises out of `mapping.map_items`.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python

from connectors.animana.models import WireRecord
from warehouse.schema.clients import SPECIES

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class MappingError(ValueError):
    """The record is valid Animana but has no valid warehouse row."""


def resource_key(kind: str, record_id: int) -> str:
    """The namespaced animana_id of a bookable resource: ``staff:<id>`` or ``resource:<id>``."""
    return f"{'staff' if kind == 'staff' else 'resource'}:{record_id}"


def split_resource_key(key: str) -> tuple[str, int]:
    """`resource_key` inverted: ``staff:12`` → (``staff``, 12), ``resource:3`` → (``room``, 3)."""
    namespace, _, record_id = key.partition(":")
    return ("staff" if namespace == "staff" else "room"), int(record_id)


def warehouse_species(species: str) -> str:
    """A species name from Animana as the warehouse records it: one of its list, else ``other``."""
    return species if species in SPECIES else "other"


def vat_bp(percent: int) -> int:
    return int(percent) * 100


@lru_cache(maxsize=8192)
def at_midnight(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in Amsterdam, given as the same instant in UTC. In UTC because psycopg's binary COPY
    asks every timestamptz for its UTC offset, which a ZoneInfo works out from the zone's transitions each time
    (payment rows: 0.65 -> 0.31 us each to encode); cached because a practice's ~30,000 payments, prescriptions and
    lab results fall on ~1,100 days. Datetimes are immutable, so rows may share one."""
    return dt.datetime.combine(day, dt.time(0, 0), AMSTERDAM).astimezone(dt.UTC)


def id_text(value: int | None) -> str | None:
    """An optional Animana id as the text the warehouse keys on."""
    return None if value is None else str(value)


def blank_to_none(value: str | None) -> str | None:
    return value if value else None


def decimal_or_none(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def raw_json(record: WireRecord) -> str:
    """The record as JSON, as its model would dump it (for the quarantine table)."""
    return json.dumps(to_jsonable_python(record), ensure_ascii=False)


def wire_id(animana_id: str | None) -> int | None:
    """An Animana id as the API writes it (an integer), from the text the warehouse keys on."""
    return None if animana_id is None else int(animana_id)


def wire_local_time(moment: dt.datetime) -> str:
    """A time of the practice's day (an appointment's start, a consult's date) as the API writes it: Amsterdam
    time with its offset, to the second (``2025-03-01T10:30:00+01:00``)."""
    return moment.astimezone(AMSTERDAM).isoformat(timespec="seconds")


def wire_day(moment: dt.date | dt.datetime) -> str:
    """A day as the API writes it; a moment (what `at_midnight` made of a day) is its day in Amsterdam."""
    if isinstance(moment, dt.datetime):
        moment = moment.astimezone(AMSTERDAM).date()
    return moment.isoformat()
