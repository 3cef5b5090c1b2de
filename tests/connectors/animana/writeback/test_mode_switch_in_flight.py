"""Switching a module's mode while its writes are in flight: nothing captured is dropped or sent where the new mode
says it must not go. Real simulator over HTTP, real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, booked_appointment, outbox, set_modes
from warehouse.integration import modes
from warehouse.security.permissions import Actor


def test_a_switch_to_native_holds_captured_writes_back_and_a_switch_back_sends_them(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    appointment, animana_appointment = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        session.execute(text("UPDATE appointment SET reason = 'Onderweg' WHERE id = :a"), {"a": appointment})
    manager = Actor.at(None, practice.practice_id, {"practice_manager"})
    with as_app(hybrid, practice) as session:  # the switch lands while the entry waits
        modes.set_mode(session, manager, practice_id=practice.practice_id, module="agenda", mode="native",
                       confirmed=True)  # fmt: skip
    with hybrid.client() as client:
        report = push(hybrid.db.app_engine, client, practice, master_key=MASTER_KEY)
        assert report.sent == 0
        assert client.get(practice.animana_id, "agenda", animana_appointment).reason != "Onderweg"
        # Still there, visible, not dropped.
        assert [(e["table_name"], e["state"]) for e in outbox(hybrid, practice)] == [
            ("appointment", "pending")
        ]
        with as_app(hybrid, practice) as session:  # native: a further change is not captured at all
            session.execute(
                text("UPDATE appointment SET reason = 'Native' WHERE id = :a"), {"a": appointment}
            )
            modes.set_mode(session, manager, practice_id=practice.practice_id, module="agenda", mode="hybrid",
                           confirmed=True)  # fmt: skip
        assert len(outbox(hybrid, practice)) == 1
        report = push(hybrid.db.app_engine, client, practice, master_key=MASTER_KEY)
        assert report.sent == 1
        # The entry goes with the row as it is now (the later native change included).
        assert client.get(practice.animana_id, "agenda", animana_appointment).reason == "Native"


def test_a_switch_from_hybrid_to_animana_still_delivers_what_hybrid_captured(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    appointment, animana_appointment = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        session.execute(text("UPDATE appointment SET reason = 'Hybride' WHERE id = :a"), {"a": appointment})
    set_modes(hybrid, practice, "animana", ("agenda",))
    with hybrid.client() as client:
        assert push(hybrid.db.app_engine, client, practice, master_key=MASTER_KEY).sent == 1
        assert client.get(practice.animana_id, "agenda", animana_appointment).reason == "Hybride"
    assert [e["state"] for e in outbox(hybrid, practice)] == ["done"]
