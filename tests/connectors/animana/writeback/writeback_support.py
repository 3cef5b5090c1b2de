"""Helpers of the write-back tests: local writes as the application role, integration modes, the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from connectors.animana.sync.links import LinkedPractice
from tests.animana_sync_support import SyncWorld
from warehouse.kernel.tenancy import AccessContext


@contextmanager
def as_app(world: SyncWorld, practice: LinkedPractice) -> Iterator[Session]:
    with world.db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        yield session


def set_modes(world: SyncWorld, practice: LinkedPractice, mode: str, modules: tuple[str, ...]) -> None:
    with world.db.system("test: integration modes") as session:
        for module in modules:
            session.execute(
                text(
                    "INSERT INTO practice_module_mode (practice_id, module, mode) VALUES (:p, :m, :mode) "
                    "ON CONFLICT (practice_id, module) DO UPDATE SET mode = EXCLUDED.mode"
                ),
                {"p": practice.practice_id, "m": module, "mode": mode},
            )


def outbox(world: SyncWorld, practice: LinkedPractice) -> list[dict[str, Any]]:
    with as_app(world, practice) as session:
        rows = session.execute(
            text(
                "SELECT id, table_name, row_id, operation, state, attempts, last_error, answered_version, "
                "next_attempt_at - clock_timestamp() AS due_in FROM writeback_outbox ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def booked_appointment(world: SyncWorld, practice: LinkedPractice) -> tuple[int, int]:
    """(local id, Animana id) of a booked appointment that came from Animana."""
    with as_app(world, practice) as session:
        row = session.execute(
            text(
                "SELECT id, animana_id FROM appointment WHERE status = 'booked' AND animana_id IS NOT NULL "
                "ORDER BY id LIMIT 1"
            )
        ).one()
    return row.id, int(row.animana_id)


def new_patient_with_appointment(world: SyncWorld, practice: LinkedPractice, name: str, species: str,
                                 reason: str) -> int:  # fmt: skip
    """A new animal of a synced client with a new appointment booked for it (both local, not yet in Animana);
    the patient's id."""
    with world.db.system("test: an appointment type") as session:
        type_id = session.execute(
            text(
                "INSERT INTO appointment_type (franchise_id, code, name, duration_minutes) "
                "VALUES (:f, 'consult', 'Consult', 15) RETURNING id"
            ),
            {"f": practice.franchise_id},
        ).scalar_one()
    with as_app(world, practice) as session:
        client_id = session.execute(
            text("SELECT id FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1")
        ).scalar_one()
        patient_id = session.execute(
            text("INSERT INTO patient (practice_id, name, species) VALUES (:p, :n, :s) RETURNING id"),
            {"p": practice.practice_id, "n": name, "s": species},
        ).scalar_one()
        session.execute(
            text("INSERT INTO client_patient (practice_id, client_id, patient_id) VALUES (:p, :c, :a)"),
            {"p": practice.practice_id, "c": client_id, "a": patient_id},
        )
        template = session.execute(
            text("SELECT resource_id, franchise_id FROM appointment WHERE animana_id IS NOT NULL LIMIT 1")
        ).one()
        session.execute(
            text(
                "INSERT INTO appointment (practice_id, franchise_id, resource_id, appointment_type_id, patient_id, "
                "client_id, starts_at, ends_at, status, reason) VALUES (:p, :f, :r, :t, :a, :c, "
                "'2026-11-20 06:00+00', '2026-11-20 06:15+00', 'booked', :reason)"
            ),
            {"p": practice.practice_id, "f": template.franchise_id, "r": template.resource_id,
             "t": type_id, "a": patient_id, "c": client_id, "reason": reason},
        )  # fmt: skip
    return patient_id
