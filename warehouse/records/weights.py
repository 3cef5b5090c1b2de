"""Weights: typed as the practice types them (``4,35``, ``4.35``, ``4,35 kg``), checked against what is plausible
for the species, stamped with the practice's local date and time; and the series the weight chart draws.

Stored in grams (``weight_measurement.weight_grams``), so a weight has at most three decimals in kg. The table's
triggers audit each write.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.practice_time import practice_zone
from warehouse.records.errors import RecordsError
from warehouse.records.patients import require_patient
from warehouse.schema.clients import WeightMeasurement
from warehouse.security.permissions import RECORDS_WRITE, Actor, require

# Plausible body weight in kg per species: from a newborn kitten or pup to the largest breeds, with room to spare;
# outside it a weight is almost surely a typing error (grams typed as kg, a slipped comma).
PLAUSIBLE_KG: dict[str, tuple[Decimal, Decimal]] = {
    "dog": (Decimal("0.1"), Decimal("120")), "cat": (Decimal("0.05"), Decimal("15")),
    "rabbit": (Decimal("0.03"), Decimal("12")), "guinea_pig": (Decimal("0.05"), Decimal("2")),
    "hamster": (Decimal("0.002"), Decimal("0.3")), "rat": (Decimal("0.005"), Decimal("1")),
    "ferret": (Decimal("0.01"), Decimal("3")), "bird": (Decimal("0.002"), Decimal("20")),
    "reptile": (Decimal("0.002"), Decimal("200")), "horse": (Decimal("20"), Decimal("1500")),
    "goat": (Decimal("1"), Decimal("150")), "sheep": (Decimal("1"), Decimal("200")),
    "pig": (Decimal("0.5"), Decimal("400")), "cattle": (Decimal("20"), Decimal("1500")),
    "other": (Decimal("0.001"), Decimal("1999")),
}  # fmt: skip
# Digits with at most one decimal separator (comma or point) and up to three decimals, optionally "kg".
_WEIGHT = re.compile(r"(?P<whole>[0-9]{1,4})(?:[.,](?P<fraction>[0-9]{1,3}))?\s*(?:kg)?", re.IGNORECASE)


def parse_weight_kg(raw: str | None) -> Decimal:
    """``"4,35"`` / ``"4.35"`` / ``"4,35 kg"`` -> ``Decimal("4.35")``; a ``RecordsError`` at ``weight`` otherwise."""
    typed = (raw or "").strip()
    if not typed:
        raise RecordsError("weight", "Type the weight in kg, e.g. 4,35.")
    match = _WEIGHT.fullmatch(typed)
    if match is None:
        raise RecordsError("weight", f"“{typed}” is not a weight in kg: use digits and one comma, e.g. 4,35.")
    kg = Decimal(f"{match['whole']}.{match['fraction'] or '0'}")
    if kg <= 0:
        raise RecordsError("weight", "A weight is more than 0 kg.")
    return kg


def kg_text(kg: Decimal | float) -> str:
    """``4.35`` -> ``4,35``, ``12.0`` -> ``12``, ``1250`` -> ``1250`` (decimal comma, no trailing zeros, at most
    three decimals). No thousands point: ``1.250`` would read back as 1,25 kg where a point is a decimal point."""
    plain = f"{Decimal(str(kg)).quantize(Decimal('0.001')):f}".rstrip("0").rstrip(".")
    return plain.replace(".", ",")


def record_weight(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, weight: str | None,
    measured_on: dt.date, measured_time: dt.time, now: dt.datetime | None = None,
) -> WeightMeasurement:  # fmt: skip
    """A weight measured on ``measured_on`` at ``measured_time``, both the practice's local time."""
    require(actor, RECORDS_WRITE, practice_id)
    patient = require_patient(session, practice_id, patient_id)
    kg = parse_weight_kg(weight)
    low, high = PLAUSIBLE_KG[patient.species]
    if not low <= kg <= high:
        raise RecordsError(
            "weight", f"{kg_text(kg)} kg is not plausible for a {patient.species.replace('_', ' ')} "
                      f"({kg_text(low)}–{kg_text(high)} kg). Check the decimal comma.",
        )  # fmt: skip
    measured_at = dt.datetime.combine(measured_on, measured_time, practice_zone(session, practice_id))
    if measured_at > (now or dt.datetime.now(dt.UTC)):
        raise RecordsError("measured_at", "A weight cannot be measured in the future.")
    if patient.date_of_birth is not None and measured_on < patient.date_of_birth:
        raise RecordsError("measured_at", "The weight is dated before the patient was born.")
    measurement = WeightMeasurement(practice_id=practice_id, patient_id=patient_id, measured_at=measured_at,
                                    weight_grams=int(kg * 1000), recorded_by=actor.user_id)  # fmt: skip
    session.add(measurement)
    session.flush()
    return measurement


def patient_weights(
    session: Session, practice_id: int, patient_id: int, zone: ZoneInfo | None = None
) -> pl.DataFrame:
    """The patient's weights, oldest first: ``measured_at`` (local time of the practice), ``weight_kg``,
    ``when`` and ``weight`` (Dutch text for tables and the chart's hover), ``recorded_by``."""
    zone = zone or practice_zone(session, practice_id)
    rows = session.execute(
        text(
            """SELECT w.measured_at, w.weight_grams, u.full_name FROM weight_measurement w
               LEFT JOIN app_user u ON u.id = w.recorded_by
               WHERE w.practice_id = :p AND w.patient_id = :pat ORDER BY w.measured_at, w.id"""
        ),
        {"p": practice_id, "pat": patient_id},
    ).all()
    return pl.DataFrame(
        [(at.astimezone(zone).replace(tzinfo=None), grams / 1000, fmt.date_time(at, zone),
          f"{kg_text(Decimal(grams) / 1000)} kg", by) for at, grams, by in rows],
        schema={"measured_at": pl.Datetime("us"), "weight_kg": pl.Float64, "when": pl.String,
                "weight": pl.String, "recorded_by": pl.String},
        orient="row",
    )  # fmt: skip
