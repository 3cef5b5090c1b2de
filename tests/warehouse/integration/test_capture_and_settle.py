"""Change capture, held Animana changes and their settlement, on the real triggers (migration 0380).

The sync's loader is stood in for by its marker: an UPDATE made as writer ``animana`` is exactly what the loader
sends (tests/connectors/animana cover the loader itself)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import MASTER_KEY, Database
from tests.factories import World
from warehouse.integration import conflicts, modes, status
from warehouse.integration.capture import writing_as
from warehouse.integration.errors import IntegrationError
from warehouse.integration.outbox import note_handed
from warehouse.integration.rules import cancellation_wins, local_progress_wins
from warehouse.integration.settle import settle
from warehouse.kernel.tenancy import AccessContext
from warehouse.security.permissions import Actor, NotPermitted

AGENDA_RULES = {
    "appointment": {
        "status": local_progress_wins,
        "starts_at": cancellation_wins,
        "ends_at": cancellation_wins,
    }
}


@pytest.fixture
def world(fresh_world_db: Database) -> tuple[Database, World]:
    fresh_db, world = fresh_world_db, fresh_world_db.world  # type: ignore[attr-defined]
    with fresh_db.system() as session:
        # Unlinked practices capture nothing (no Animana to tell): link them, as onboarding does, and give the
        # rows the Animana ids a sync would have.
        # Only the factories' hand-made entry per practice: the world's own writes were not captured.
        outbox_entries = session.execute(text("SELECT count(*) FROM writeback_outbox")).scalar()
        assert outbox_entries == len(world.practices)
        session.execute(text("UPDATE tenant SET animana_practice_id = 'AN-' || code WHERE kind = 'practice'"))
        writing_as(session, "writeback")
        session.execute(text("UPDATE client SET animana_id = 'c-' || id"))
        session.execute(text("UPDATE appointment SET animana_id = 'a-' || id"))
        session.execute(text("UPDATE prescription SET animana_id = 'p-' || id"))
        session.execute(text("DELETE FROM writeback_outbox; DELETE FROM writeback_conflict; "
                             "DELETE FROM writeback_incoming"))  # fmt: skip
    return fresh_db, world


def _app(db: Database, world: World, code: str = "a1"):  # noqa: ANN202
    p = world.practices[code]
    return db.as_app(AccessContext.for_practices([p.practice_id], user_id=p.user_id))


def _sync(session: Session, sql: str, **params: object) -> None:
    writing_as(session, "animana")
    session.execute(text(sql), params)


def _outbox(session: Session, practice_id: int) -> list[tuple]:
    return session.execute(
        text(
            "SELECT table_name, operation, changes, base, state FROM writeback_outbox "
            "WHERE practice_id = :p ORDER BY id"
        ),
        {"p": practice_id},
    ).all()


def test_a_local_write_is_captured_and_a_native_module_or_an_unlinked_practice_is_not(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        surname = session.execute(
            text("SELECT last_name FROM client WHERE id = :c"), {"c": a1.client_id}
        ).scalar_one()
        session.execute(
            text("UPDATE client SET last_name = 'Jansen-Bakker' WHERE id = :c"), {"c": a1.client_id}
        )
        # An UPDATE that changes nothing leaves nothing to send.
        session.execute(text("UPDATE client SET city = city WHERE id = :c"), {"c": a1.client_id})
    with _app(db, w) as session:
        assert _outbox(session, a1.practice_id) == [
            ("client", "update", {"last_name": "Jansen-Bakker"}, {"last_name": surname}, "pending")
        ]
        assert session.execute(
            text("SELECT writeback_pending FROM client WHERE id = :c"), {"c": a1.client_id}
        ).scalar_one()
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        modes.set_mode(
            session, manager, practice_id=a1.practice_id, module="agenda", mode="native", confirmed=True
        )
        session.execute(
            text("UPDATE appointment SET reason = 'Native' WHERE id = :a"), {"a": a1.appointment_id}
        )
    a2 = w.practices["a2"]
    with db.system() as session:
        session.execute(
            text("UPDATE tenant SET animana_practice_id = NULL WHERE id = :p"), {"p": a2.practice_id}
        )
    with _app(db, w, "a2") as session:
        session.execute(text("UPDATE client SET last_name = 'Los' WHERE id = :c"), {"c": a2.client_id})
        assert _outbox(session, a2.practice_id) == []
    with _app(db, w) as session:
        assert [row[0] for row in _outbox(session, a1.practice_id)] == ["client"]
        assert modes.modes(session, a1.practice_id)["agenda"] == "native"
        audit = session.execute(
            text("SELECT detail FROM audit_log WHERE entity = 'integration_mode' AND practice_id = :p"),
            {"p": a1.practice_id},
        ).scalar_one()
        assert audit == {"module": "agenda", "from": "animana", "to": "native"}


def test_a_mode_switch_needs_confirmation_and_the_permission_at_that_practice(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        with pytest.raises(IntegrationError, match="Confirm switching"):
            modes.set_mode(session, manager, practice_id=a1.practice_id, module="agenda", mode="hybrid",
                           confirmed=False)  # fmt: skip
        receptionist = Actor.at(a1.user_id, a1.practice_id, {"receptionist"})
        with pytest.raises(NotPermitted):
            modes.set_mode(session, receptionist, practice_id=a1.practice_id, module="agenda", mode="hybrid",
                           confirmed=True)  # fmt: skip
        assert modes.mode_of(session, a1.practice_id, "agenda") == "animana"


def test_the_sync_never_overwrites_a_pending_row_and_settling_merges_per_field(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:  # the receptionist corrects the surname and the postcode
        session.execute(
            text("UPDATE client SET last_name = 'Lokaal', postcode = '1234AB' WHERE id = :c"),
            {"c": a1.client_id},
        )
    with _app(db, w) as session:  # Animana changed the city, and the surname too
        _sync(session, "UPDATE client SET city = 'Utrecht', last_name = 'Animana', animana_version = 'v2' "
              "WHERE id = :c", c=a1.client_id)  # fmt: skip
    with _app(db, w) as session:
        row = session.execute(
            text("SELECT last_name, city, postcode FROM client WHERE id = :c"), {"c": a1.client_id}
        ).one()
        assert row.last_name == "Lokaal" and row.city != "Utrecht"  # held, not applied
        report = settle(session, a1.practice_id, {}, master_key=MASTER_KEY)
        assert (report.rows, report.fields_applied, report.conflicts_opened) == (1, 1, 1)
        row = session.execute(
            text(
                "SELECT last_name, city, postcode, animana_version, writeback_pending FROM client WHERE id = :c"
            ),
            {"c": a1.client_id},
        ).one()
        # Animana's city applied, our postcode kept, the surname waits for a person.
        assert (row.last_name, row.city, row.postcode) == ("Lokaal", "Utrecht", "1234AB")
        assert row.animana_version == "v2" and row.writeback_pending
        assert [entry.state for entry in _outbox(session, a1.practice_id)] == ["held"]
        [conflict] = conflicts.open_conflicts(session, [a1.practice_id], master_key=MASTER_KEY)
        assert [(f.label, f.local, f.animana) for f in conflict.fields] == [("surname", "Lokaal", "Animana")]

    with _app(db, w) as session:
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        with pytest.raises(IntegrationError, match="surname"):
            conflicts.resolve(session, manager, conflict.id, {})
        conflicts.resolve(session, manager, conflict.id, {"last_name": "animana"})
    with _app(db, w) as session:
        row = session.execute(
            text("SELECT last_name, postcode, writeback_pending FROM client WHERE id = :c"),
            {"c": a1.client_id},
        ).one()
        assert (row.last_name, row.postcode, row.writeback_pending) == ("Animana", "1234AB", True)
        entries = _outbox(session, a1.practice_id)
        # The held entry is replaced by one that sends what Animana does not have yet: the postcode.
        assert [(e.state, e.changes) for e in entries] == [
            ("superseded", {"last_name": "Lokaal", "postcode": "1234AB"}),
            ("pending", {"postcode": "1234AB"}),
        ]
        assert conflicts.open_conflicts(session, [a1.practice_id]) == []


@pytest.mark.parametrize(
    ("sending", "animana_changed"),
    [("postcode", "city"), ("postcode", "city and postcode"), ("postcode and address", "city")],
)
def test_an_animana_update_of_a_pending_row_is_taken_by_the_loader_unless_it_touches_what_the_row_is_sending(
    world, sending, animana_changed
):
    """The receptionist changed the postcode (and the address); Animana changed the city (and the postcode).

    - Only what the row is not sending: the loader's own statement takes it with Animana's version, the local
      postcode stays, the row stays pending, nothing is held and the settlement has nothing to do; the entry goes
      out conditional on the version just taken.
    - The postcode too: held for the settlement as before (a clash, or the same value: only it tells).
    - An address being sent: encrypted with a random nonce, SQL cannot tell Animana's from the one both sides
      agreed on, so the row is held however little Animana changed."""
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        before = session.execute(
            text("SELECT postcode, city FROM client WHERE id = :c"), {"c": a1.client_id}
        ).one()
        address = ", address_enc = '\\x01'::bytea" if "address" in sending else ""
        session.execute(
            text(f"UPDATE client SET postcode = '1234AB'{address} WHERE id = :c"), {"c": a1.client_id}
        )
    postcode = "9999ZZ" if "postcode" in animana_changed else before.postcode
    with _app(db, w) as session:  # the loader sends Animana's whole record: the postcode as both last agreed
        _sync(session, "UPDATE client SET city = 'Utrecht', postcode = :postcode, animana_version = 'v2' "
              "WHERE id = :c", c=a1.client_id, postcode=postcode)  # fmt: skip
    with _app(db, w) as session:
        row = session.execute(
            text("SELECT postcode, city, animana_version, writeback_pending FROM client WHERE id = :c"),
            {"c": a1.client_id},
        ).one()
        held = session.execute(text("SELECT count(*) FROM writeback_incoming")).scalar_one()
        [entry] = _outbox(session, a1.practice_id)
        assert entry.state == "pending" and entry.changes["postcode"] == "1234AB"
        if (sending, animana_changed) == ("postcode", "city"):
            assert (row.city, row.postcode, row.animana_version, row.writeback_pending) == (
                "Utrecht", "1234AB", "v2", True
            )  # fmt: skip
            assert held == 0
            assert settle(session, a1.practice_id, {}, master_key=MASTER_KEY).rows == 0
            # The same record again (a full sync): nothing to write, the row is not even rewritten.
            written = text("SELECT xmin::text FROM client WHERE id = :c")
            version_before = session.execute(written, {"c": a1.client_id}).scalar_one()
            _sync(session, "UPDATE client SET city = 'Utrecht', postcode = :postcode, animana_version = 'v2' "
                  "WHERE id = :c", c=a1.client_id, postcode=postcode)  # fmt: skip
            assert session.execute(written, {"c": a1.client_id}).scalar_one() == version_before
        else:
            assert (row.city, row.postcode, row.animana_version, held) == (before.city, "1234AB", None, 1)


@pytest.mark.parametrize(
    "first_entry", ["never handed", "handed, goes again", "handed as two requests", "handed, a dead letter"]
)
def test_animana_holding_an_earlier_value_of_ours_is_decided_by_whether_that_entry_was_handed_over(
    world, first_entry
):
    """Two surname changes here, then Animana holds the first one.

    - Never handed over: an Animana user typed the same name — a conflict, not our later surname silently written
      over theirs.
    - Handed over and going again: it may have arrived (its answer lost) or not (an Animana user's edit); its
      re-send, the same request, will tell, so the row is deferred: held as it came, nothing decided yet.
    - Handed over and not going again (a dead letter), or handed over as two different requests (an update on two
      versions: its re-send proves nothing about the other): taken for our write come back — ours stays."""
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        for surname in ("Eerst", "Daarna"):
            session.execute(
                text("UPDATE client SET last_name = :s WHERE id = :c"), {"s": surname, "c": a1.client_id}
            )
    with _app(db, w) as session:
        first = session.execute(text("SELECT min(id) FROM writeback_outbox")).scalar_one()
        if first_entry != "never handed":
            note_handed(session, a1.practice_id, {first: "key-1"})
        if first_entry == "handed as two requests":
            note_handed(session, a1.practice_id, {first: "key-2"})
        if first_entry == "handed, a dead letter":
            session.execute(text("UPDATE writeback_outbox SET state = 'dead' WHERE id = :e"), {"e": first})
        _sync(
            session,
            "UPDATE client SET last_name = 'Eerst', animana_version = 'v2' WHERE id = :c",
            c=a1.client_id,
        )
    with _app(db, w) as session:
        report = settle(session, a1.practice_id, {}, master_key=MASTER_KEY)
        surname, version = session.execute(
            text("SELECT last_name, animana_version FROM client WHERE id = :c"), {"c": a1.client_id}
        ).one()
        assert surname == "Daarna"  # kept here in every case
        opened = conflicts.open_conflicts(session, [a1.practice_id], master_key=MASTER_KEY)
        states = [e.state for e in _outbox(session, a1.practice_id)]
        still_held = session.execute(
            text(
                "SELECT animana_version, incoming ->> 'last_name' FROM writeback_incoming WHERE row_id = :c"
            ),
            {"c": a1.client_id},
        ).all()
    if first_entry == "never handed":
        assert report.conflicts_opened == 1
        [conflict] = opened
        assert [(f.label, f.local, f.animana) for f in conflict.fields] == [("surname", "Daarna", "Eerst")]
        assert (states, still_held) == (["held", "held"], [])
    elif first_entry == "handed, goes again":
        assert (report.deferred, report.conflicts_opened, opened, states) == (
            1,
            0,
            [],
            ["pending", "pending"],
        )
        assert [tuple(h) for h in still_held] == [("v2", "Eerst")]  # as it came, for the next settlement
        assert version != "v2"  # the row did not move to Animana's version: its writes stay conditional
    else:
        assert (report.deferred, report.conflicts_opened, opened, still_held) == (0, 0, [], [])
        assert version == "v2"
        assert states == (
            ["dead", "pending"] if first_entry == "handed, a dead letter" else ["pending", "pending"]
        )


def test_an_entry_a_resolution_supersedes_leaves_no_hand_over_mark(world):
    """A handed-over entry the manager's resolution replaces is never looked at again: its mark goes with it
    (marks of superseded entries used to stay for ever)."""
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        session.execute(text("UPDATE client SET last_name = 'Lokaal' WHERE id = :c"), {"c": a1.client_id})
    with _app(db, w) as session:
        [entry] = session.execute(text("SELECT id FROM writeback_outbox")).scalars().all()
        note_handed(session, a1.practice_id, {entry: "key-1"})
        _sync(session, "UPDATE client SET last_name = 'Animana', animana_version = 'v2' WHERE id = :c",
              c=a1.client_id)  # fmt: skip
    with _app(db, w) as session:
        assert settle(session, a1.practice_id, {}, master_key=MASTER_KEY).conflicts_opened == 1
        [conflict] = conflicts.open_conflicts(session, [a1.practice_id], master_key=MASTER_KEY)
    with _app(db, w) as session:
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        conflicts.resolve(session, manager, conflict.id, {"last_name": "animana"})
    with _app(db, w) as session:
        assert [e.state for e in _outbox(session, a1.practice_id)] == ["superseded"]
        marks = text("SELECT count(*) FROM writeback_handed WHERE entry_id = :e")
        assert session.execute(marks, {"e": entry}).scalar_one() == 0


def test_rules_decide_the_safe_cases_and_record_which_rule_decided(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:  # the desk cancels and moves the appointment at the same time …
        session.execute(
            text("UPDATE appointment SET status = 'cancelled', starts_at = starts_at + interval '1 hour', "
                 "ends_at = ends_at + interval '1 hour', cancelled_at = now() WHERE id = :a"),
            {"a": a1.appointment_id},
        )  # fmt: skip
    with _app(db, w) as session:  # … while Animana moved it by two hours
        # (The loader sets every mapped column to Animana's value: the status is still booked there.)
        _sync(session, "UPDATE appointment SET starts_at = starts_at + interval '2 hours', status = 'booked', "
              "ends_at = ends_at + interval '2 hours', cancelled_at = NULL, reason = 'Animana' WHERE id = :a",
              a=a1.appointment_id)  # fmt: skip
        report = settle(session, a1.practice_id, AGENDA_RULES)
        assert report.conflicts_opened == 0 and report.auto_resolved == 1
        assert report.rules_used == {"cancellation_wins": 2}
        status, reason = session.execute(
            text("SELECT status, reason FROM appointment WHERE id = :a"), {"a": a1.appointment_id}
        ).one()
        assert (status, reason) == ("cancelled", "Animana")
        decided = session.execute(
            text(
                "SELECT state, fields FROM writeback_conflict WHERE row_id = :a AND table_name = 'appointment'"
            ),
            {"a": a1.appointment_id},
        ).one()
        assert decided.state == "auto_resolved"
        assert {c: (f["rule"], f["decided"]) for c, f in decided.fields.items()} == {
            "starts_at": ("cancellation_wins", "local"),
            "ends_at": ("cancellation_wins", "local"),
        }
        assert decided.fields["starts_at"]["local"] != decided.fields["starts_at"]["animana"]
        assert [e.state for e in _outbox(session, a1.practice_id)] == ["pending"]


def test_conflicts_and_held_changes_are_the_practices_own(world):
    db, w = world
    a1, b1 = w.practices["a1"], w.practices["b1"]
    with _app(db, w, "b1") as session:
        session.execute(text("UPDATE client SET last_name = 'B-lokaal' WHERE id = :c"), {"c": b1.client_id})
    with _app(db, w, "b1") as session:
        _sync(session, "UPDATE client SET last_name = 'B-animana' WHERE id = :c", c=b1.client_id)
        settle(session, b1.practice_id, {})
    with _app(db, w, "a1") as session:
        assert conflicts.open_conflicts(session, [a1.practice_id, b1.practice_id]) == []
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        [b_conflict] = session.execute(text("SELECT count(*) FROM writeback_conflict")).one()
        assert b_conflict == 0
    with _app(db, w, "b1") as session:
        [conflict] = conflicts.open_conflicts(session, [b1.practice_id])
    with _app(db, w, "a1") as session, pytest.raises(IntegrationError, match="does not exist"):
        conflicts.resolve(session, manager, conflict.id, {"last_name": "local"})


def test_the_status_counts_what_waits_and_what_needs_a_person(world):
    db, w = world
    a1, a2 = w.practices["a1"], w.practices["a2"]
    with _app(db, w) as session:
        session.execute(text("UPDATE client SET last_name = 'Lokaal' WHERE id = :c"), {"c": a1.client_id})
        session.execute(
            text("UPDATE appointment SET reason = 'Eerder' WHERE id = :a"), {"a": a1.appointment_id}
        )
    with _app(db, w) as session:
        _sync(session, "UPDATE client SET last_name = 'Animana' WHERE id = :c", c=a1.client_id)
        settle(session, a1.practice_id, {})
        session.execute(
            text("UPDATE writeback_outbox SET state = 'dead', created_at = now() - interval '2 days' "
                 "WHERE table_name = 'appointment'")
        )  # fmt: skip
    with db.as_app(AccessContext.for_practices([a1.practice_id, a2.practice_id])) as session:
        statuses = {
            (s.practice_code, s.module): s
            for s in status.integration_status(session, [a1.practice_id, a2.practice_id])
        }
        assert len(statuses) == 8
        clients, agenda = statuses[("a1", "clients")], statuses[("a1", "agenda")]
        assert (clients.outbox_depth, clients.open_conflicts, clients.dead_letters) == (1, 1, 0)
        assert (agenda.outbox_depth, agenda.dead_letters) == (0, 1)
        assert "1 open conflict(s)" in clients.attention
        assert statuses[("a2", "clients")].outbox_depth == 0
        problems = status.stale_problems(list(statuses.values()), older_than=dt.timedelta(days=1))
        assert problems == [problems[0]] and problems[0].startswith("a1/agenda: 1 dead letter(s)")


@pytest.mark.parametrize("side", ["animana", "local"])
def test_a_record_animana_deletes_while_it_was_changed_here_waits_for_a_person(world, side):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        prescription = session.execute(
            text("SELECT id FROM prescription WHERE practice_id = :p"), {"p": a1.practice_id}
        ).scalar_one()
        session.execute(text("UPDATE prescription SET quantity = 3 WHERE id = :r"), {"r": prescription})
    with _app(db, w) as session:  # the sync's tombstone for it
        _sync(session, "DELETE FROM prescription WHERE id = :r", r=prescription)
        settle(session, a1.practice_id, {})
        assert (
            session.execute(
                text("SELECT quantity FROM prescription WHERE id = :r"), {"r": prescription}
            ).scalar_one()
            == 3
        )
        [conflict] = conflicts.open_conflicts(session, [a1.practice_id])
        assert [(f.label, f.local, f.animana) for f in conflict.fields] == [
            ("record (deleted in Animana)", "changed here", "deleted")
        ]
        manager = Actor.at(a1.user_id, a1.practice_id, {"practice_manager"})
        conflicts.resolve(session, manager, conflict.id, {"deleted_in_animana": side})
    with _app(db, w) as session:
        row = session.execute(
            text("SELECT quantity, animana_id FROM prescription WHERE id = :r"), {"r": prescription}
        ).one_or_none()
        entries = [(e.operation, e.state) for e in _outbox(session, a1.practice_id)]
        if side == "animana":
            assert row is None and entries == [("update", "superseded")]
        else:  # kept, and sent to Animana again as a new record
            assert row.quantity == 3 and row.animana_id is None
            assert entries == [("update", "superseded"), ("insert", "pending")]
