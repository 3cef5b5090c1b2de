"""The sync against local edits (issue 15): its own writes are never captured for write-back, it stores each
record's Animana version, and a sync that brings Animana's old values does not revert a local change (the
"reverted cancellation" bug) — Animana's version is held and settled per field instead."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from connectors.animana.simulator import RunningSimulator
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.kernel.tenancy import AccessContext
from warehouse.scheduling.transitions import cancel
from warehouse.security.permissions import Actor

# The mirrored tables (written back) and their Animana resource, each with the query of its versions.
VERSIONS = {
    "relations": "SELECT animana_id, animana_version FROM client WHERE practice_id = :pid",
    "animals": "SELECT animana_id, animana_version FROM patient WHERE practice_id = :pid",
    "agenda": "SELECT animana_id, animana_version FROM appointment WHERE practice_id = :pid",
    "consults": "SELECT animana_id, animana_version FROM visit WHERE practice_id = :pid",
    "vaccinations": "SELECT animana_id, animana_version FROM vaccination WHERE practice_id = :pid",
    "prescriptions": "SELECT animana_id, animana_version FROM prescription WHERE practice_id = :pid",
    "invoices": "SELECT animana_id, animana_version FROM invoice WHERE practice_id = :pid",
    "payments": "SELECT animana_id, animana_version FROM payment WHERE practice_id = :pid",
}
OUTBOX = "SELECT table_name, row_id, operation, changes FROM writeback_outbox ORDER BY id"


def _raw_page(sim: RunningSimulator, practice: int, resource: str, limit: int = 200) -> list[dict[str, Any]]:
    """The first page of ``resource`` exactly as the API sends it (JSON, not parsed into models)."""
    with httpx.Client(base_url=sim.base_url, timeout=10) as http:
        token = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
            },
        ).json()["access_token"]
        page = http.get(
            f"/v1/practices/{practice}/{resource}",
            params={"limit": limit},
            headers={"Authorization": f"Bearer {token}"},
        )
    page.raise_for_status()
    return page.json()["data"]


def _sync(world: SyncWorld, *, full: bool = False) -> None:
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, full=full)


def _outbox(world: SyncWorld) -> list[tuple]:
    with world.db.system() as session:
        return [tuple(r) for r in session.execute(text(OUTBOX)).all()]


def _held(world: SyncWorld, table: str, row_id: int) -> dict[str, Any] | None:
    with world.db.system() as session:
        return session.scalar(
            text("SELECT incoming FROM writeback_incoming WHERE table_name = :t AND row_id = :id"),
            {"t": table, "id": row_id},
        )


def _conflicts(world: SyncWorld) -> list[tuple]:
    with world.db.system() as session:
        return [
            tuple(r)
            for r in session.execute(text("SELECT table_name, row_id, state FROM writeback_conflict"))
        ]


def test_a_sync_stores_every_records_version_as_the_api_wrote_it_and_captures_nothing(synced_world):
    world = synced_world
    practice = world.practices[0]
    assert _outbox(world) == []
    with world.db.system() as session:
        stored = {
            resource: dict(session.execute(text(query), {"pid": practice.practice_id}).all())
            for resource, query in VERSIONS.items()
        }
        pending = session.scalar(text("SELECT count(*) FROM client WHERE writeback_pending"))
    assert pending == 0
    for resource, versions in stored.items():
        sent = {
            str(r["id"]): r["updated_at"] for r in _raw_page(world.sim, int(practice.animana_id), resource)
        }
        compared = set(sent) & set(versions)
        assert len(compared) >= min(len(sent), len(versions)) > 0, resource  # the page's records are mirrored
        assert {i: versions[i] for i in compared} == {i: sent[i] for i in compared}, resource
        assert all(v is not None for v in versions.values()), resource


def test_a_local_surname_edit_is_captured_once_and_a_full_sync_does_not_revert_it(synced_world):
    world = synced_world
    practice = world.practices[0]
    with world.db.system() as session:
        client_id, animana_id, animana_surname, version = session.execute(
            text(
                "SELECT id, animana_id, last_name, animana_version FROM client WHERE practice_id = :pid "
                "AND deleted_at IS NULL ORDER BY id LIMIT 1"
            ),
            {"pid": practice.practice_id},
        ).one()
    with world.db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        session.execute(
            text("UPDATE client SET last_name = 'Lokaal-Gewijzigd' WHERE practice_id = :pid AND id = :id"),
            {"pid": practice.practice_id, "id": client_id},
        )
    edit = [("client", client_id, "update", {"last_name": "Lokaal-Gewijzigd"})]
    assert _outbox(world) == edit

    _sync(world, full=True)  # Animana still has the old surname, at the old version

    with world.db.system() as session:
        surname, pending, stored_version = session.execute(
            text("SELECT last_name, writeback_pending, animana_version FROM client WHERE id = :id"),
            {"id": client_id},
        ).one()
    assert (surname, pending, stored_version) == ("Lokaal-Gewijzigd", True, version)
    # Animana's old surname was held and settled in the sync's own transaction: Animana had not changed it since
    # it last agreed, so ours stays and still goes out; no conflict, nothing left held.
    assert _held(world, "client", client_id) is None and _conflicts(world) == []
    assert _outbox(world) == edit  # the sync added nothing


def test_a_cancellation_made_here_survives_a_full_sync_that_still_says_booked(synced_world):
    """The issue's "reverted cancellation": Animana still has the appointment booked when the next sync reads it."""
    world = synced_world
    practice = world.practices[0]
    with world.db.system() as session:
        appointment_id, version = session.execute(
            text(
                "SELECT id, animana_version FROM appointment WHERE practice_id = :pid AND source = 'animana' "
                "AND status = 'booked' ORDER BY starts_at DESC LIMIT 1"
            ),
            {"pid": practice.practice_id},
        ).one()
    desk = Actor.at(None, practice.practice_id, {"receptionist"})
    with world.db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        cancel(
            session,
            desk,
            practice_id=practice.practice_id,
            appointment_id=appointment_id,
            reason="Eigenaar ziek",
        )
    [(table, row_id, operation, changes)] = _outbox(world)
    assert (table, row_id, operation) == ("appointment", appointment_id, "update")
    assert changes["status"] == "cancelled" and changes["cancel_reason"] == "Eigenaar ziek"
    assert changes["cancelled_at"] is not None

    _sync(world, full=True)

    with world.db.system() as session:
        status, reason, stored_version = session.execute(
            text("SELECT status, cancel_reason, animana_version FROM appointment WHERE id = :id"),
            {"id": appointment_id},
        ).one()
    assert (status, reason, stored_version) == ("cancelled", "Eigenaar ziek", version)
    assert _held(world, "appointment", appointment_id) is None and _conflicts(world) == []
    assert len(_outbox(world)) == 1
