"""The outbox as the dispatcher sees it (warehouse.integration.outbox), on the real capture triggers: which entries
are due and claimed, the row each carries, and what recording Animana's answers does to the entry and its row."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY, Database
from tests.factories import World, cipher_for
from warehouse.integration import outbox
from warehouse.integration.capture import writing_as
from warehouse.kernel.tenancy import AccessContext


@pytest.fixture
def world(fresh_world_db: Database) -> tuple[Database, World]:
    fresh_db, world = fresh_world_db, fresh_world_db.world  # type: ignore[attr-defined]
    with fresh_db.system() as session:
        # Linked to Animana, as onboarding does (an unlinked practice captures nothing).
        session.execute(text("UPDATE tenant SET animana_practice_id = 'AN-' || code WHERE kind = 'practice'"))
        # The world's set-up writes were captured like any local write; start from a clean outbox, the rows as
        # if they came from Animana.
        session.execute(text("DELETE FROM writeback_outbox; DELETE FROM writeback_conflict"))
        writing_as(session, "writeback")
        session.execute(
            text("UPDATE client SET writeback_pending = false, animana_id = id, animana_version = 'v0'")
        )
        session.execute(text("UPDATE appointment SET writeback_pending = false, animana_id = id"))
    return fresh_db, world


def _app(db: Database, world: World, code: str = "a1"):  # noqa: ANN202
    p = world.practices[code]
    return db.as_app(AccessContext.for_practices([p.practice_id], user_id=p.user_id))


def _set_surname(db: Database, world: World, surname: str) -> None:
    with _app(db, world) as session:
        session.execute(
            text("UPDATE client SET last_name = :n WHERE id = :c"),
            {"n": surname, "c": world.practices["a1"].client_id},
        )


def _claim(session, world: World, limit: int = 10) -> list[outbox.OutboxEntry]:  # noqa: ANN001
    return outbox.due_entries(session, world.practices["a1"].practice_id, limit, master_key=MASTER_KEY)


def test_a_row_s_later_change_never_overtakes_its_earlier_one_not_even_a_dead_one(world):
    db, w = world
    a1 = w.practices["a1"]
    _set_surname(db, w, "Eerst")
    _set_surname(db, w, "Daarna")
    with _app(db, w) as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Controle' WHERE id = :a"), {"a": a1.appointment_id}
        )
    with _app(db, w) as session:
        claimed = _claim(session, w)
        assert [(e.table_name, e.changes) for e in claimed] == [
            ("client", {"last_name": "Eerst"}),
            ("appointment", {"reason": "Controle"}),
        ]
        # A second dispatcher meanwhile: both claimed entries are locked, and the surname's second change waits
        # on its first.
        with _app(db, w) as other:
            assert _claim(other, w) == []
        outbox.mark_dead(session, claimed[0], "Animana refused: last_name: too short")
    with _app(db, w) as session:
        assert [e.table_name for e in _claim(session, w)] == ["appointment"]
    with _app(db, w) as session:
        assert outbox.retry_dead(session, a1.practice_id) == 1
    with _app(db, w) as session:
        # The retried entry takes the row's later change with it (a person retries after fixing the row).
        first = _claim(session, w)
        assert [(e.changes, e.attempts) for e in first] == [
            ({"last_name": "Eerst"}, 0),
            ({"reason": "Controle"}, 0),
        ]
        assert first[0].row["last_name"] == "Daarna"
        outbox.mark_sent(session, first[0], first[0].animana_id, "v1")
        states = session.execute(text("SELECT state, last_error FROM writeback_outbox ORDER BY id")).all()
        assert [tuple(s) for s in states] == [
            ("done", None), ("superseded", f"folded into entry {first[0].id} (retried)"), ("pending", None),
        ]  # fmt: skip


def test_an_entry_carries_the_row_as_it_left_it_typed_and_with_the_pii_decrypted(world):
    db, w = world
    a1 = w.practices["a1"]
    _set_surname(db, w, "Eerst")
    with _app(db, w) as session:  # then the e-mail address and the surname again
        cipher = cipher_for(session, a1.practice_id, MASTER_KEY)
        session.execute(
            text("UPDATE client SET last_name = 'Daarna', email_enc = :e WHERE id = :c"),
            {"e": cipher.encrypt("email", "nieuw@example.nl"), "c": a1.client_id},
        )
        session.execute(
            text("UPDATE patient SET date_of_birth = '2020-02-29' WHERE id = :p"), {"p": a1.patient_id}
        )
    with _app(db, w) as session:
        first, patient = _claim(session, w)
        assert first.row["last_name"] == "Eerst"
        assert first.row["email"] == "jansen.a1@example.nl"  # as it was when the first change was made
        assert first.row["phone"] == "06-12345678"
        assert not any(column.endswith(("_enc", "_bidx")) for column in first.row)
        assert (first.animana_id, first.animana_version) == (str(a1.client_id), "v0")
        assert patient.row["date_of_birth"] == dt.date(2020, 2, 29)
        outbox.mark_sent(session, first, first.animana_id, "v1")
    with _app(db, w) as session:
        (second,) = [e for e in _claim(session, w) if e.table_name == "client"]
        assert (second.row["last_name"], second.row["email"]) == ("Daarna", "nieuw@example.nl")
        assert second.animana_version == "v1"  # the If-Match follows Animana's last answer


def test_a_row_deleted_since_is_still_sent_as_it_was_and_its_delete_knows_the_animana_id(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:  # a client that came from Animana
        writing_as(session, "writeback")
        client_id = session.execute(
            text("INSERT INTO client (practice_id, animana_id, animana_version, last_name) "
                 "VALUES (:p, 'A-77', 'v0', 'Smit') RETURNING id"),
            {"p": a1.practice_id},
        ).scalar_one()  # fmt: skip
    with _app(db, w) as session:
        session.execute(text("UPDATE client SET last_name = 'Smits' WHERE id = :c"), {"c": client_id})
        session.execute(text("DELETE FROM client WHERE id = :c"), {"c": client_id})
    with _app(db, w) as session:
        (update,) = _claim(session, w)
        assert (update.operation, update.row["last_name"], update.animana_id) == ("update", "Smits", "A-77")
        outbox.mark_sent(session, update, update.animana_id, "v1")
    with _app(db, w) as session:
        (delete,) = _claim(session, w)
        # Conditional on the version Animana answered the update with, which the deleted row never stored.
        assert (delete.operation, delete.row, delete.animana_id, delete.animana_version) == (
            "delete", {}, "A-77", "v1",
        )  # fmt: skip


def test_mark_sent_stores_the_answer_without_capturing_it_and_clears_pending_when_nothing_is_left(world):
    db, w = world
    a1 = w.practices["a1"]
    _set_surname(db, w, "Eerst")
    _set_surname(db, w, "Daarna")

    def row_and_outbox() -> tuple:
        with _app(db, w) as session:
            row = session.execute(
                text("SELECT animana_version, writeback_pending FROM client WHERE id = :c"),
                {"c": a1.client_id},
            ).one()
            states = session.execute(
                text("SELECT state, answered_version FROM writeback_outbox ORDER BY id")
            ).all()
            return tuple(row), [tuple(s) for s in states]

    with _app(db, w) as session:
        outbox.mark_sent(session, _claim(session, w)[0], str(a1.client_id), "v1")
    assert row_and_outbox() == (("v1", True), [("done", "v1"), ("pending", None)])
    with _app(db, w) as session:
        outbox.mark_sent(session, _claim(session, w)[0], str(a1.client_id), "v2")
    assert row_and_outbox() == (("v2", False), [("done", "v1"), ("done", "v2")])


def test_a_retry_is_due_only_after_its_delay_and_a_native_module_is_never_claimed(world):
    db, w = world
    a1 = w.practices["a1"]
    _set_surname(db, w, "Eerst")
    with _app(db, w) as session:
        (entry,) = _claim(session, w)
        outbox.mark_retry(session, entry, "Animana is unreachable: 503", 30)
        due = session.execute(
            text("SELECT next_attempt_at - clock_timestamp() FROM writeback_outbox")
        ).scalar_one()
        assert dt.timedelta(seconds=29) < due <= dt.timedelta(seconds=30)
    with _app(db, w) as session:
        assert _claim(session, w) == []
        session.execute(text("UPDATE writeback_outbox SET next_attempt_at = now()"))
    with _app(db, w) as session:
        assert [(e.attempts, e.changes) for e in _claim(session, w)] == [(1, {"last_name": "Eerst"})]
    with db.system() as session:
        session.execute(
            text("INSERT INTO practice_module_mode (practice_id, module, mode) VALUES (:p, 'clients', 'native') "
                 "ON CONFLICT (practice_id, module) DO UPDATE SET mode = 'native'"),
            {"p": a1.practice_id},
        )  # fmt: skip
    with _app(db, w) as session:
        assert _claim(session, w) == []


def test_stamping_animana_s_answer_marks_no_mart_day_while_a_local_edit_of_the_row_still_does(world):
    db, w = world
    a1 = w.practices["a1"]
    with _app(db, w) as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Controle' WHERE id = :a"), {"a": a1.appointment_id}
        )
    with db.system() as session:
        session.execute(text("DELETE FROM mart_dirty_day"))

    def dirty_days() -> int:
        with db.system() as session:
            return session.execute(text("SELECT count(*) FROM mart_dirty_day")).scalar_one()

    with _app(db, w) as session:
        (entry,) = _claim(session, w)
        outbox.mark_all_sent(session, [(entry, entry.animana_id, "v1")])
        stamped = session.execute(
            text("SELECT animana_version, writeback_pending FROM appointment WHERE id = :a"),
            {"a": a1.appointment_id},
        ).one()
        # Only the stamp's statements skip the queue: the setting is off again for the rest of the transaction.
        assert session.execute(text("SELECT current_setting('vetconnect.bookkeeping')")).scalar() == "off"
    assert tuple(stamped) == ("v1", False)
    assert dirty_days() == 0  # the stamp changed nothing a mart reads
    with _app(db, w) as session:
        session.execute(
            text("UPDATE appointment SET starts_at = starts_at + interval '1 day', ends_at = ends_at + "
                 "interval '1 day' WHERE id = :a"),
            {"a": a1.appointment_id},
        )  # fmt: skip
    assert dirty_days() == 2  # the day it left and the day it moved to
