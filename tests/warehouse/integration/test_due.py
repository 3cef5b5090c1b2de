"""`practices_with_due_entries`: the sensor's question — which linked practices have entries the dispatcher would
claim now — on real captured entries (the triggers of migration 0380)."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import Database
from warehouse.integration.due import practices_with_due_entries
from warehouse.integration.modes import set_mode
from warehouse.kernel.tenancy import AccessContext
from warehouse.security.permissions import Actor


def test_only_linked_practices_with_claimable_entries_of_live_modules_are_due(fresh_world_db: Database):
    db, world = fresh_world_db, fresh_world_db.world  # type: ignore[attr-defined]
    with db.system() as session:
        session.execute(text("DELETE FROM writeback_outbox"))  # the world's own set-up writes
        session.execute(text("UPDATE tenant SET animana_practice_id = '9' || id WHERE code IN ('a1', 'a2')"))
    a1, a2, b1 = (world.practices[c] for c in ("a1", "a2", "b1"))
    for p in (a1, a2, b1):  # one local change each; b1 is not linked to Animana
        with db.as_app(AccessContext.for_practices([p.practice_id])) as session:
            session.execute(text("UPDATE client SET last_name = 'Nieuw' WHERE id = :c"), {"c": p.client_id})
            session.execute(text("UPDATE client SET last_name = 'Nieuwer' WHERE id = :c"), {"c": p.client_id})
    with db.system() as session:
        due = practices_with_due_entries(session)
    # Per record in order: the second change of a client waits for the first, so one entry each is due.
    assert [(d.code, d.due, d.attempts) for d in due] == [("a1", 1, 0), ("a2", 1, 0)]
    first = {d.code: d.signature for d in due}

    with db.as_app(AccessContext.for_practices([a2.practice_id])) as session:  # a2 leaves Animana for clients
        manager = Actor.at(None, a2.practice_id, {"practice_manager"})
        set_mode(
            session, manager, practice_id=a2.practice_id, module="clients", mode="native", confirmed=True
        )
    with db.system() as session:  # a1's first entry failed once and waits a minute
        session.execute(
            text(
                "UPDATE writeback_outbox SET attempts = 1, next_attempt_at = now() + interval '1 minute' "
                "WHERE id = (SELECT min(id) FROM writeback_outbox WHERE practice_id = :p)"
            ),
            {"p": a1.practice_id},
        )
        assert practices_with_due_entries(session) == []
        session.execute(
            text("UPDATE writeback_outbox SET next_attempt_at = now() WHERE practice_id = :p"),
            {"p": a1.practice_id},
        )
        (again,) = practices_with_due_entries(session)
    assert (
        again.code == "a1" and again.signature != first["a1"]
    )  # a retry come due is new work for the sensor
    with db.system() as session:  # a dead letter holds its row's later changes until a person retries it
        session.execute(
            text("UPDATE writeback_outbox SET state = 'dead' WHERE id = (SELECT min(id) FROM writeback_outbox "
                 "WHERE practice_id = :p)"),
            {"p": a1.practice_id},
        )  # fmt: skip
        assert practices_with_due_entries(session) == []
