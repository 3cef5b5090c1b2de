"""The read helpers of the integration pages, on the real triggers: which records carry a marker (a conflict
outranks a dead letter outranks a pending write), what a record is called, the dead letters and their retry; each
sees only the practices of the session (RLS)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY, Database
from tests.factories import TZ, World
from warehouse.integration import dead_letters
from warehouse.integration.capture import writing_as
from warehouse.integration.markers import writeback_markers
from warehouse.integration.record_titles import record_titles
from warehouse.integration.settle import settle
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.tenancy import AccessContext
from warehouse.security.permissions import Actor, NotPermitted


@pytest.fixture
def world(fresh_world_db: Database) -> tuple[Database, World]:
    fresh_db, world = fresh_world_db, fresh_world_db.world  # type: ignore[attr-defined]
    with fresh_db.system() as session:
        # Linked to Animana, as onboarding does (an unlinked practice captures nothing).
        session.execute(text("UPDATE tenant SET animana_practice_id = 'AN-' || code WHERE kind = 'practice'"))
        session.execute(text("DELETE FROM writeback_outbox; DELETE FROM writeback_conflict; "
                             "DELETE FROM writeback_incoming"))  # fmt: skip
        writing_as(session, "writeback")
        for table in MIRRORED:
            session.execute(text(f"UPDATE {table} SET writeback_pending = false"))
    return fresh_db, world


def _app(db: Database, world: World, *codes: str):  # noqa: ANN202
    practices = [world.practices[c] for c in codes]
    return db.as_app(
        AccessContext.for_practices([p.practice_id for p in practices], user_id=practices[0].user_id)
    )


def test_markers_rank_conflict_over_dead_letter_over_pending_and_stay_in_the_practice(world):
    db, w = world
    a1, b1 = w.practices["a1"], w.practices["b1"]
    with _app(db, w, "a1") as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Hoest' WHERE id = :a"), {"a": a1.appointment_id}
        )
        session.execute(text("UPDATE patient SET breed = 'Beagle' WHERE id = :p"), {"p": a1.patient_id})
        session.execute(text("UPDATE client SET last_name = 'Lokaal' WHERE id = :c"), {"c": a1.client_id})
    with _app(db, w, "a1") as session:  # Animana changed the surname too: a conflict; the breed was refused
        writing_as(session, "animana")
        session.execute(text("UPDATE client SET last_name = 'Animana' WHERE id = :c"), {"c": a1.client_id})
        settle(session, a1.practice_id, {}, master_key=MASTER_KEY)
        session.execute(text("UPDATE writeback_outbox SET state = 'dead' WHERE table_name = 'patient'"))
    with _app(db, w, "b1") as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Hoest' WHERE id = :a"), {"a": b1.appointment_id}
        )

    asked = [("appointment", a1.appointment_id), ("patient", a1.patient_id), ("client", a1.client_id),
             ("visit", 1), ("appointment", b1.appointment_id)]  # fmt: skip
    with _app(db, w, "a1") as session:
        assert writeback_markers(session, a1.practice_id, asked) == {
            ("appointment", a1.appointment_id): "pending",
            ("patient", a1.patient_id): "dead",
            ("client", a1.client_id): "conflict",
        }
        # b1's pending appointment: not visible from a1, even when asked for with b1's id.
        assert writeback_markers(session, b1.practice_id, asked) == {}
        assert writeback_markers(session, a1.practice_id, []) == {}
    with _app(db, w, "b1") as session:
        assert writeback_markers(session, b1.practice_id, asked) == {
            ("appointment", b1.appointment_id): "pending"
        }


def test_records_are_called_by_name_and_local_time(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w, "a1") as session:
        ids = session.execute(
            text("SELECT (SELECT id FROM visit WHERE practice_id = :p LIMIT 1) AS visit, "
                 "(SELECT id FROM invoice WHERE practice_id = :p AND number IS NOT NULL LIMIT 1) AS invoice, "
                 "(SELECT number FROM invoice WHERE practice_id = :p AND number IS NOT NULL LIMIT 1) AS number"),
            {"p": a1.practice_id},
        ).one()  # fmt: skip
        titles = record_titles(session, a1.practice_id, [
            ("client", a1.client_id), ("patient", a1.patient_id), ("appointment", a1.appointment_id),
            ("invoice", ids.invoice), ("visit", ids.visit), ("client", 999_999)], zone=TZ)  # fmt: skip
    assert titles[("client", a1.client_id)] == "client J. Jansen-a1"
    assert titles[("patient", a1.patient_id)] == "patient Bello-a1 (dog)"
    # The factories' appointment: 10 Nov 2026 09:00 in Amsterdam.
    assert titles[("appointment", a1.appointment_id)] == "appointment di 10 nov 2026 09:00 · Bello-a1"
    assert titles[("invoice", ids.invoice)] == f"invoice {ids.number}"
    assert titles[("visit", ids.visit)].startswith("consult ") and titles[("visit", ids.visit)].endswith(
        "Bello-a1"
    )
    assert ("client", 999_999) not in titles  # gone: the caller names it by its id


def test_dead_letters_are_listed_oldest_first_and_a_retry_requeues_them_audited(world):
    db, w = world
    a1, b1 = w.practices["a1"], w.practices["b1"]
    for code in ("a1", "b1"):
        p = w.practices[code]
        with _app(db, w, code) as session:
            session.execute(text("UPDATE patient SET breed = 'Beagle' WHERE id = :p"), {"p": p.patient_id})
            session.execute(text("UPDATE client SET city = 'Delft' WHERE id = :c"), {"c": p.client_id})
            session.execute(text("UPDATE writeback_outbox SET state = 'dead', attempts = 6, last_error = '422: ' "
                                 "|| table_name, created_at = created_at - interval '2 hours'"))  # fmt: skip
    with _app(db, w, "a1") as session:
        letters = dead_letters.dead_letters(session, [a1.practice_id, b1.practice_id])
        assert [(d.practice_id, d.table, d.operation, d.reason, d.attempts) for d in letters] == [
            (a1.practice_id, "patient", "update", "422: patient", 6),
            (a1.practice_id, "client", "update", "422: client", 6),
        ]  # b1's are not visible here
        assert dt.datetime.now(dt.UTC) - letters[0].created_at > dt.timedelta(hours=2)
        receptionist = Actor.at(a1.user_id, a1.practice_id, {"receptionist"})
        with pytest.raises(NotPermitted):
            dead_letters.retry(session, receptionist, a1.practice_id, [letters[0].id])
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        assert dead_letters.retry(session, manager, a1.practice_id, [letters[0].id]) == 1
    with _app(db, w, "a1") as session:
        states = session.execute(
            text("SELECT table_name, state, attempts FROM writeback_outbox ORDER BY id")
        ).all()
        assert [tuple(s) for s in states] == [("patient", "pending", 0), ("client", "dead", 6)]
        audit = session.execute(
            text(
                "SELECT entity_ids, detail FROM audit_log WHERE entity = 'writeback_outbox' AND practice_id = :p"
            ),
            {"p": a1.practice_id},
        ).one()
        assert (audit.entity_ids, audit.detail) == ([letters[0].id], {"retried": 1})
