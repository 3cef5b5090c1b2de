"""Animana ``labresults``: one observation each, mirrored as ``lab_observation`` rows (code system ``animana``,
status ``final``) by a declarative plan (`TableLoad`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from connectors.animana.models import AnimanaRecord, Day, Id, NonEmpty, Number, Text, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import at_midnight, blank_to_none, decimal_or_none
from warehouse.ingest.animana.plan import Fixed, Reference, TableLoad
from warehouse.ingest.animana.staging import Staging


class LabResult(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    date: Day
    test_code: NonEmpty
    test_name: Text
    value: Number
    unit: Text
    reference_low: Number | None = None
    reference_high: Number | None = None
    flag: Literal["H", "L", "N"] | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        low, high = fields["reference_low"], fields["reference_high"]
        if low is not None and high is not None and low > high:
            raise ValueError("reference_low is above reference_high")


class LabObservationRow(NamedTuple):
    """A row as staged (`LOAD.staging`: same fields, same order)."""

    animana_id: str
    patient_animana_id: str
    code: str
    text: str | None
    value_numeric: Decimal | None
    unit: str | None
    ref_low: Decimal | None
    ref_high: Decimal | None
    abnormal_flag: str | None
    observed_at: dt.datetime


def map_labresult(r: WireRecord) -> LabObservationRow:
    return LabObservationRow(
        str(r["id"]), str(r["animal_id"]), r["test_code"][:64], blank_to_none(r["test_name"]),
        decimal_or_none(r["value"]), blank_to_none(r["unit"]), decimal_or_none(r["reference_low"]),
        decimal_or_none(r["reference_high"]), r["flag"], at_midnight(r["date"]),
    )  # fmt: skip


LOAD = TableLoad(
    table="lab_observation",
    staging=Staging(
        "stg_lab",
        (
            "animana_id text",
            "patient_animana_id text",
            "code text",
            "text text",
            "value_numeric numeric",
            "unit text",
            "ref_low numeric",
            "ref_high numeric",
            "abnormal_flag text",
            "observed_at timestamptz",
        ),
    ),  # fmt: skip
    columns=(
        Reference("patient_id", "patient", "patient_animana_id", required=True, unknown="unknown animal"),
        "code",
        Fixed("code_system", "animana"),
        "text",
        "value_numeric",
        "unit",
        "ref_low",
        "ref_high",
        "abnormal_flag",
        Fixed("status", "final"),
        "observed_at",
    ),
)

SPEC = ResourceSpec(
    name="labresults",
    module="records",
    model=LabResult,
    parents=("animals",),
    read_row=map_labresult,
    load=LOAD,
)
