"""Bespoke handlers for the agenda and the clinical record: appointments, consults (visits with their diagnoses
and weight) and prescriptions.

Why not a `plan.TableLoad`: an appointment resolves its type by the franchise's code and records its source and
franchise; a consult replaces its diagnoses and weight (child tables keyed by the consult) with every page; a
prescription resolves its product by the franchise's code into a composite foreign key whose franchise half
must stay NULL when the product is unknown.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from warehouse.ingest.animana.quarantine import (
    quarantine_unknown_animal,
    quarantine_unresolved,
    unknown_parent,
)
from warehouse.ingest.animana.rows import LoadTarget
from warehouse.ingest.animana.staging import Staging, stage
from warehouse.ingest.animana.statements import existing, missing, params, ref, version, write, write_batch

STG_APPOINTMENT = Staging(
    "stg_appointment",
    (
        "animana_id text", "resource_animana_id text", "patient_animana_id text", "client_animana_id text",
        "type_code text", "starts_at timestamptz", "ends_at timestamptz", "status text", "reason text",
        "booked_at timestamptz", "cancelled_at timestamptz", "updated_at timestamptz",
    ),
)  # fmt: skip
STG_VISIT = Staging(
    "stg_visit",
    (
        "animana_id text", "patient_animana_id text", "appointment_animana_id text", "started_at timestamptz",
        "reason text", "subjective text", "objective text", "assessment text", "plan text",
        "updated_at timestamptz",
    ),
)  # fmt: skip
STG_DIAGNOSIS = Staging(
    "stg_diagnosis",
    ("animana_id text", "visit_animana_id text", "venom_code text", "term text", "diagnosed_at timestamptz"),
)
STG_WEIGHT = Staging(
    "stg_weight",
    (
        "animana_id text", "visit_animana_id text", "patient_animana_id text", "measured_at timestamptz",
        "weight_grams bigint",
    ),
)  # fmt: skip
STG_PRESCRIPTION = Staging(
    "stg_prescription",
    (
        "animana_id text", "patient_animana_id text", "visit_animana_id text", "product_code text",
        "product_name text", "quantity numeric", "dosage_instructions text", "dispensing_category text",
        "prescribed_at timestamptz", "updated_at timestamptz",
    ),
)  # fmt: skip


def load_appointments(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_APPOINTMENT, rows)
    quarantined = quarantine_unresolved(
        cur, target, resource, STG_APPOINTMENT.name, missing("resource", "s.resource_animana_id"),
        unknown_parent("unknown resource", "resource_animana_id"),
    )  # fmt: skip
    columns = [
        "resource_id", "franchise_id", "appointment_type_id", "patient_id", "client_id", "starts_at",
        "ends_at", "status", "reason", "booked_at", "cancelled_at", "cancel_reason", "source", "animana_version",
    ]  # fmt: skip
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, r.id, %(fid)s, at.id, p.id, c.id, s.starts_at, s.ends_at, s.status, "
        "s.reason, s.booked_at, s.cancelled_at, NULL::text, 'animana', {version} FROM stg_appointment s "
        "{resource} {patient} {client} "
        "LEFT JOIN appointment_type at ON at.franchise_id = %(fid)s AND at.code = s.type_code"
    ).format(
        resource=ref("resource", "s.resource_animana_id", "r", required=True),
        patient=ref("patient", "s.patient_animana_id", "p"),
        client=ref("client", "s.client_animana_id", "c"),
        version=version("s.updated_at"),
    )
    return (
        *write_batch(cur, "appointment", columns, select, target, STG_APPOINTMENT.name, touch=True),
        quarantined,
    )


def load_visits(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_VISIT, rows)
    known = existing(cur, "visit", target, STG_VISIT.name)
    quarantined = quarantine_unknown_animal(cur, target, resource, STG_VISIT.name)
    columns = [
        "patient_id", "appointment_id", "started_at", "reason", "subjective", "objective", "assessment",
        "plan", "animana_version",
    ]  # fmt: skip
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, p.id, a.id, s.started_at, s.reason, s.subjective, s.objective, "
        "s.assessment, s.plan, {version} FROM stg_visit s {patient} {appointment}"
    ).format(
        patient=ref("patient", "s.patient_animana_id", "p", required=True),
        appointment=ref("appointment", "s.appointment_animana_id", "a"),
        version=version("s.updated_at"),
    )
    counts = write(cur, "visit", columns, select, params(target), new=not known, touch=True)
    diagnoses, weights = children.get("diagnoses", []), children.get("weights", [])
    values = params(
        target,
        parents=known,
        weight_ids=[f"consult:{p}" for p in known],
        keep_diagnoses=[d[0] for d in diagnoses],
        keep_weights=[w[0] for w in weights],
    )
    # Diagnoses and the weight are parts of the consult: replaced with it (stale ones only on an update).
    stage(cur, STG_DIAGNOSIS, diagnoses)
    if known:
        cur.execute(
            "DELETE FROM diagnosis d USING visit v WHERE d.practice_id = %(pid)s AND v.practice_id = %(pid)s "
            "AND v.animana_id = ANY(%(parents)s) AND d.patient_id = v.patient_id AND d.visit_id = v.id "
            "AND NOT (d.animana_id = ANY(%(keep_diagnoses)s))",
            values,
        )
    # A diagnosis or weight is keyed by its consult's id: new consults have none yet. Both read the visit's id
    # and patient from the joined visit.
    visit = ref("visit", "x.visit_animana_id", "v", required=True)
    write(
        cur,
        "diagnosis",
        ["visit_id", "patient_id", "venom_code", "term", "diagnosed_at"],
        sql.SQL(
            "SELECT %(pid)s, x.animana_id, v.id, v.patient_id, x.venom_code, x.term, x.diagnosed_at "
            "FROM stg_diagnosis x {}"
        ).format(visit),
        values,
        new=not known,
    )
    stage(cur, STG_WEIGHT, weights)
    if known:
        cur.execute(
            "DELETE FROM weight_measurement w WHERE w.practice_id = %(pid)s "
            "AND w.animana_id = ANY(%(weight_ids)s) AND NOT (w.animana_id = ANY(%(keep_weights)s))",
            values,
        )
    write(
        cur,
        "weight_measurement",
        ["patient_id", "measured_at", "weight_grams"],
        sql.SQL(
            "SELECT %(pid)s, x.animana_id, v.patient_id, x.measured_at, x.weight_grams FROM stg_weight x {}"
        ).format(visit),
        values,
        new=not known,
    )
    return (*counts, quarantined)


def load_prescriptions(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_PRESCRIPTION, rows)
    quarantined = quarantine_unknown_animal(cur, target, resource, STG_PRESCRIPTION.name)
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, p.id, v.id, CASE WHEN pr.id IS NULL THEN NULL ELSE %(fid)s END, "
        "pr.id, s.product_name, s.quantity, s.dosage_instructions, s.dispensing_category, s.prescribed_at, "
        "{version} FROM stg_prescription s {patient} {visit} "
        "LEFT JOIN product pr ON pr.franchise_id = %(fid)s AND pr.code = s.product_code"
    ).format(
        patient=ref("patient", "s.patient_animana_id", "p", required=True),
        visit=ref("visit", "s.visit_animana_id", "v"),
        version=version("s.updated_at"),
    )
    columns = [
        "patient_id", "visit_id", "franchise_id", "product_id", "product_name", "quantity",
        "dosage_instructions", "dispensing_category", "prescribed_at", "animana_version",
    ]  # fmt: skip
    return (*write_batch(cur, "prescription", columns, select, target, STG_PRESCRIPTION.name), quarantined)
