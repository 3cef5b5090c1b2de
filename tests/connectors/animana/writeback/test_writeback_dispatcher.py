"""The dispatcher over real HTTP to the simulator and a real PostgreSQL: what a local write in hybrid mode becomes
in Animana, through lost answers, rate limits, refusals and repeated edits of one row."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from connectors.animana import AnimanaClient
from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import push
from connectors.animana.writeback.sender import STALE, Backoff, Sender, request_key
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import (
    as_app,
    booked_appointment,
    new_patient_with_appointment,
    outbox,
)
from warehouse.integration.outbox import due_entries, note_handed

QUICK = Backoff(initial_s=0.01, cap_s=0.02, parent_wait_s=0.01)
VALID_IBAN = "NL91ABNA0417164300"


def _push(world: SyncWorld, client: AnimanaClient | None = None, **kwargs):  # noqa: ANN202
    practice = world.practices[0]
    with client or world.client() as client:
        kwargs.setdefault("sender", Sender(client, backoff=QUICK))
        return push(world.db.app_engine, client, practice, master_key=MASTER_KEY, **kwargs)


def _due_now(world: SyncWorld) -> None:
    with as_app(world, world.practices[0]) as session:
        session.execute(text("UPDATE writeback_outbox SET next_attempt_at = now() WHERE state = 'pending'"))


def _new_client(world: SyncWorld, last_name: str, iban: str | None = None) -> int:
    practice = world.practices[0]
    with as_app(world, practice) as session:
        from tests.factories import cipher_for

        cipher = cipher_for(session, practice.practice_id, MASTER_KEY)
        return session.execute(
            text(
                "INSERT INTO client (practice_id, last_name, city, iban_enc) VALUES (:p, :n, 'Utrecht', :iban) "
                "RETURNING id"
            ),
            {"p": practice.practice_id, "n": last_name, "iban": cipher.encrypt("iban", iban)},
        ).scalar_one()


def _relations_named(world: SyncWorld, last_name: str) -> list[dict]:
    with world.client() as client:
        return [
            r.model_dump(mode="json")
            for r in client.iter_records(world.practices[0].animana_id, "relations")
            if not r.deleted and r.last_name == last_name
        ]


def test_a_local_cancellation_reaches_animana_and_the_row_is_no_longer_pending(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    local_id, animana_id = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        session.execute(
            text(
                "UPDATE appointment SET status = 'cancelled', cancel_reason = 'Eigenaar belde af' WHERE id = :a"
            ),
            {"a": local_id},
        )
    report = _push(hybrid)
    assert (report.sent, report.dead, report.retried) == (1, 0, 0)
    with hybrid.client() as client:
        assert client.get(practice.animana_id, "agenda", animana_id).status == "cancelled"
    (entry,) = outbox(hybrid, practice)
    assert (entry["state"], entry["attempts"], entry["last_error"]) == ("done", 1, None)
    with as_app(hybrid, practice) as session:
        row = session.execute(
            text("SELECT writeback_pending, animana_version FROM appointment WHERE id = :a"), {"a": local_id}
        ).one()
    assert row == (False, entry["answered_version"])
    assert _push(hybrid).sent == 0  # nothing is sent twice


def test_a_lost_answer_is_retried_with_its_key_and_animana_has_the_new_client_once(hybrid: SyncWorld):
    hybrid.sim.configure(response_lost=1.0)
    local_id = _new_client(hybrid, "Verloren-Antwoord")
    # One attempt only: with the tests' quick backoff the same push could otherwise retry it at once.
    first = _push(hybrid, max_entries=1)
    assert (first.sent, first.retried) == (0, 1)
    (entry,) = outbox(hybrid, hybrid.practices[0])
    assert entry["state"] == "pending" and "unreachable" in entry["last_error"]
    assert len(_relations_named(hybrid, "Verloren-Antwoord")) == 1  # the write happened; its answer was lost
    hybrid.sim.configure(response_lost=0.0)
    _due_now(hybrid)
    assert _push(hybrid).sent == 1
    (relation,) = _relations_named(hybrid, "Verloren-Antwoord")  # still one: the retry was the same write
    with as_app(hybrid, hybrid.practices[0]) as session:
        stored = session.execute(
            text("SELECT animana_id FROM client WHERE id = :c"), {"c": local_id}
        ).scalar_one()
    assert stored == str(relation["id"])


def test_a_rate_limited_write_waits_for_retry_after(hybrid: SyncWorld):
    _new_client(hybrid, "Even-Wachten")
    hybrid.sim.configure(rate_limit=1, rate_window=40)
    client = hybrid.client()
    client.counts(hybrid.practices[0].animana_id)  # takes the window's only request (with the same token)
    report = _push(hybrid, client)
    hybrid.sim.configure(rate_limit=0)
    assert (report.sent, report.retried, report.waiting) == (0, 0, 1)  # waiting: never towards a dead letter
    (entry,) = outbox(hybrid, hybrid.practices[0])
    assert entry["state"] == "pending" and "too many requests" in entry["last_error"]
    assert entry["due_in"] > dt.timedelta(seconds=38)  # Retry-After (~40 s), not the 10 ms backoff
    assert entry["attempts"] == 0  # nor towards the backoff: waiting for Animana is not a failed attempt


def test_a_refused_write_is_a_dead_letter_with_animana_s_message_and_goes_through_once_fixed(
    hybrid: SyncWorld,
):
    practice = hybrid.practices[0]
    local_id = _new_client(hybrid, "Foute-Iban", iban="NL00ABNA0417164300")
    report = _push(hybrid)
    assert (report.sent, report.dead) == (0, 1)
    (entry,) = outbox(hybrid, practice)
    assert entry["state"] == "dead"
    assert entry["last_error"] == "Animana refused: iban: invalid IBAN (checksum)"
    assert _relations_named(hybrid, "Foute-Iban") == []
    with as_app(hybrid, practice) as session:  # the receptionist corrects the IBAN
        from tests.factories import cipher_for

        cipher = cipher_for(session, practice.practice_id, MASTER_KEY)
        session.execute(
            text("UPDATE client SET iban_enc = :iban WHERE id = :c"),
            {"iban": cipher.encrypt("iban", VALID_IBAN), "c": local_id},
        )
    assert _push(hybrid).sent == 0  # the correction waits behind the dead letter
    with as_app(hybrid, practice) as session:
        from warehouse.integration.outbox import retry_dead

        assert retry_dead(session, practice.practice_id) == 1
    assert _push(hybrid).sent == 1
    (relation,) = _relations_named(hybrid, "Foute-Iban")
    assert relation["iban"] == VALID_IBAN
    assert [e["state"] for e in outbox(hybrid, practice)] == ["done", "superseded"]
    with as_app(hybrid, practice) as session:
        pending = session.execute(text("SELECT writeback_pending FROM client WHERE id = :c"), {"c": local_id})
        assert pending.scalar_one() is False


def test_two_edits_of_one_row_arrive_in_order(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    local_id, animana_id = booked_appointment(hybrid, practice)
    for reason in ("Eerste reden", "Tweede reden"):
        with as_app(hybrid, practice) as session:
            session.execute(
                text("UPDATE appointment SET reason = :r WHERE id = :a"), {"r": reason, "a": local_id}
            )
    sent: list[str] = []
    report = _push(hybrid, after_send=lambda entry: sent.append(entry.row["reason"]))
    assert report.sent == 2 and report.batches == 2  # one entry of a row per batch
    assert sent == ["Eerste reden", "Tweede reden"]
    with hybrid.client() as client:
        assert client.get(practice.animana_id, "agenda", animana_id).reason == "Tweede reden"
    first, second = outbox(hybrid, practice)
    assert first["answered_version"] < second["answered_version"]


def test_a_new_appointment_for_a_new_patient_follows_its_patient_into_animana(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    new_patient_with_appointment(hybrid, practice, "Nieuwe Bello", "dog", "Eerste consult")
    report = _push(hybrid)
    assert (report.sent, report.dead, report.waiting) == (2, 0, 0)  # the patient first, in the same batch
    with as_app(hybrid, practice) as session:
        patient_aid, appointment_patient = session.execute(
            text(
                "SELECT p.animana_id, a.patient_id FROM appointment a JOIN patient p ON p.id = a.patient_id "
                "WHERE a.reason = 'Eerste consult'"
            )
        ).one()
        appointment_aid = session.execute(
            text("SELECT animana_id FROM appointment WHERE reason = 'Eerste consult'")
        ).scalar_one()
    with hybrid.client() as client:
        booked = client.get(practice.animana_id, "agenda", int(appointment_aid))
    assert str(booked.animal_id) == patient_aid


def test_a_record_changed_in_animana_meanwhile_is_synced_settled_and_then_written_on_its_new_version(
    hybrid: SyncWorld,
):
    practice = hybrid.practices[0]
    local_id, animana_id = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Hier gewijzigd' WHERE id = :a"), {"a": local_id}
        )
    with hybrid.client() as client:
        before = client.get(practice.animana_id, "agenda", animana_id)
    later_end = (before.end + dt.timedelta(minutes=15)).isoformat()
    hybrid.sim.edit(
        practice.animana_id, "agenda", animana_id, {"end": later_end}
    )  # an Animana user, meanwhile

    stale = _push(hybrid)
    assert (stale.sent, stale.stale, stale.synced) == (0, 1, ["agenda"])
    (entry,) = outbox(hybrid, practice)
    assert (entry["state"], entry["last_error"]) == ("pending", STALE)
    with as_app(hybrid, practice) as session:  # the settlement took Animana's end and kept the local reason
        ends_at, reason = session.execute(
            text("SELECT ends_at, reason FROM appointment WHERE id = :a"), {"a": local_id}
        ).one()
    assert (ends_at, reason) == (before.end + dt.timedelta(minutes=15), "Hier gewijzigd")

    _due_now(hybrid)
    assert _push(hybrid).sent == 1
    with hybrid.client() as client:
        after = client.get(practice.animana_id, "agenda", animana_id)
    assert (after.reason, after.end) == ("Hier gewijzigd", before.end + dt.timedelta(minutes=15))


def test_an_appointment_in_a_room_animana_does_not_know_is_a_dead_letter_not_a_wait(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    local_id, _ = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        room = session.execute(
            text(
                "INSERT INTO resource (practice_id, kind, name) VALUES (:p, 'room', 'Eigen kamer') RETURNING id"
            ),
            {"p": practice.practice_id},
        ).scalar_one()
        session.execute(
            text("UPDATE appointment SET resource_id = :r WHERE id = :a"), {"r": room, "a": local_id}
        )
    report = _push(hybrid)
    assert (report.dead, report.waiting) == (1, 0)
    (entry,) = outbox(hybrid, practice)
    assert (entry["state"], entry["last_error"]) == ("dead", f"resource {room} does not exist in Animana")


def test_a_create_whose_answer_was_lost_and_that_a_sync_imported_meanwhile_is_one_row_again(
    hybrid: SyncWorld,
):
    practice = hybrid.practices[0]
    hybrid.sim.configure(response_lost=1.0)
    local_id = _new_client(hybrid, "Dubbel-Geimporteerd")
    assert _push(hybrid, max_entries=1).retried == 1  # in Animana, but we do not know its id yet
    with hybrid.client() as client:  # the sync brings it in as a record it has never seen: a second row
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    with as_app(hybrid, practice) as session:
        assert (
            session.execute(
                text("SELECT count(*) FROM client WHERE last_name = 'Dubbel-Geimporteerd'")
            ).scalar_one()
            == 2
        )
    hybrid.sim.configure(response_lost=0.0)
    _due_now(hybrid)
    assert _push(hybrid).sent == 1  # the retry, same key: Animana answers with the id the copy carries
    (relation,) = _relations_named(hybrid, "Dubbel-Geimporteerd")
    with as_app(hybrid, practice) as session:
        rows = session.execute(
            text("SELECT id, animana_id FROM client WHERE last_name = 'Dubbel-Geimporteerd'")
        ).all()
        trace = session.execute(
            text("SELECT state, fields FROM writeback_conflict WHERE table_name = 'client' AND row_id = :c"),
            {"c": local_id},
        ).one()
    assert [tuple(r) for r in rows] == [(local_id, str(relation["id"]))]
    assert trace.state == "auto_resolved"
    assert trace.fields["imported_copy"]["rule"] == "own_create_imported_by_sync"


def test_an_animana_edit_of_a_create_whose_answer_was_lost_is_kept_and_a_later_local_change_still_goes_out(
    hybrid: SyncWorld,
):
    """The retry's answer is Animana's record as it was created (the key replays it): an Animana user's edit made
    after the create, which the imported copy carried, is settled into our row, and our row's next change is
    written on Animana's current version — not refused as stale over and over (bench/writeback.py: such an entry
    stayed "waiting for the sync" until it became a dead letter)."""
    practice = hybrid.practices[0]
    hybrid.sim.configure(response_lost=1.0)
    local_id = _new_client(hybrid, "Later-Bewerkt")
    assert _push(hybrid, max_entries=1).retried == 1  # in Animana; the answer never came
    hybrid.sim.configure(response_lost=0.0)
    (relation,) = _relations_named(hybrid, "Later-Bewerkt")
    hybrid.sim.edit(practice.animana_id, "relations", relation["id"], {"city": "Zeist"})  # at Animana's desk
    with hybrid.client() as client:  # imported with the edit, as a row of its own
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    _due_now(hybrid)
    assert _push(hybrid).sent == 1  # the create's retry: the copy is absorbed into our row
    with as_app(hybrid, practice) as session:
        session.execute(text("UPDATE client SET first_name = 'Anna' WHERE id = :c"), {"c": local_id})

    first = _push(hybrid)  # on the version the create was answered with: stale; the sync settles the edit
    _due_now(hybrid)
    second = _push(hybrid)

    assert (first.sent + second.sent, first.dead + second.dead) == (1, 0), (first, second)
    (after,) = _relations_named(hybrid, "Later-Bewerkt")
    assert (after["first_name"], after["city"]) == ("Anna", "Zeist")  # ours went out, theirs was not undone
    with as_app(hybrid, practice) as session:
        row = session.execute(
            text("SELECT city, first_name, writeback_pending FROM client WHERE id = :c"), {"c": local_id}
        ).one()
    assert tuple(row) == ("Zeist", "Anna", False)  # Animana's edit reached our row too


def test_a_row_behind_a_version_the_sync_has_passed_gets_it_from_the_refusal_and_its_change_goes_out(
    hybrid: SyncWorld,
):
    """However a row came to agree with an older version than Animana's once the sync's cursor had passed the
    newer one (a replayed answer is the record as first written), no sync brings that version again: the refusal
    (412) carries Animana's record, which is loaded and settled, and the change goes out on Animana's version —
    instead of "waiting for the sync" until it is a dead letter."""
    practice = hybrid.practices[0]
    local_id, animana_id = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        old = session.execute(
            text("SELECT animana_version, ends_at FROM appointment WHERE id = :a"), {"a": local_id}
        ).one()
    later_end = old.ends_at + dt.timedelta(minutes=20)
    hybrid.sim.edit(practice.animana_id, "agenda", animana_id, {"end": later_end.isoformat()})
    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    with (
        hybrid.db.system() as session
    ):  # the row back on the version before Animana's edit, the cursor past it
        session.execute(
            text("UPDATE appointment SET animana_version = :v WHERE practice_id = :p AND id = :a"),
            {"v": old.animana_version, "p": practice.practice_id, "a": local_id},
        )
    with as_app(hybrid, practice) as session:
        session.execute(text("UPDATE appointment SET reason = 'Tweede' WHERE id = :a"), {"a": local_id})

    first = _push(hybrid)
    _due_now(hybrid)
    second = _push(hybrid)

    assert (first.stale, second.sent, second.dead) == (1, 1, 0), (first, second)
    with hybrid.client() as client:
        after = client.get(practice.animana_id, "agenda", animana_id)
    assert (after.reason, after.end) == ("Tweede", later_end)  # ours went out; Animana's end was not undone
    with as_app(hybrid, practice) as session:
        row = session.execute(
            text("SELECT reason, ends_at, writeback_pending FROM appointment WHERE id = :a"), {"a": local_id}
        ).one()
    assert tuple(row) == ("Tweede", later_end, False)


def test_an_update_whose_answer_was_lost_and_whose_row_a_sync_then_changed_goes_through_on_the_new_version(
    hybrid: SyncWorld,
):
    """The retry's body differs from the lost attempt's (the sync settled Animana's new end into the row): it must
    not be refused as a reused key — it is a new conditional write on the version the sync brought."""
    practice = hybrid.practices[0]
    local_id, animana_id = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        session.execute(
            text("UPDATE appointment SET reason = 'Antwoord kwijt' WHERE id = :a"), {"a": local_id}
        )
    hybrid.sim.configure(response_lost=1.0)
    assert _push(hybrid, max_entries=1).retried == 1  # applied in Animana; the answer never came
    hybrid.sim.configure(response_lost=0.0)
    with hybrid.client() as client:
        before = client.get(practice.animana_id, "agenda", animana_id)
    later_end = before.end + dt.timedelta(minutes=20)
    hybrid.sim.edit(practice.animana_id, "agenda", animana_id, {"end": later_end.isoformat()})
    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    _due_now(hybrid)

    report = _push(hybrid)

    assert (report.sent, report.dead) == (1, 0)
    (entry,) = outbox(hybrid, practice)
    assert (entry["state"], entry["last_error"]) == ("done", None)
    with hybrid.client() as client:
        after = client.get(practice.animana_id, "agenda", animana_id)
    assert (after.reason, after.end) == ("Antwoord kwijt", later_end)  # our reason and the Animana user's end


def test_a_value_of_ours_animana_refused_is_an_animana_user_s_edit_when_it_turns_up_there(hybrid: SyncWorld):
    """Our city 'Zeist' is refused as stale (an Animana user changed the surname), and staff change the city again
    to 'Houten'. An Animana user then types 'Zeist'. Animana answered that our 'Zeist' never happened, so its
    'Zeist' is that user's edit: a conflict for a person — not taken for our own write come back and overwritten
    by 'Houten' without a word."""
    practice = hybrid.practices[0]
    with as_app(hybrid, practice) as session:
        local_id, animana_id = session.execute(
            text("SELECT id, animana_id FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1")
        ).one()
        session.execute(text("UPDATE client SET city = 'Zeist' WHERE id = :c"), {"c": local_id})
    hybrid.sim.edit(practice.animana_id, "relations", int(animana_id), {"last_name": "Anders"})
    assert _push(hybrid).stale == 1  # refused: Animana never had our 'Zeist'
    with as_app(hybrid, practice) as session:
        session.execute(text("UPDATE client SET city = 'Houten' WHERE id = :c"), {"c": local_id})
    hybrid.sim.edit(practice.animana_id, "relations", int(animana_id), {"city": "Zeist"})

    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)

    with as_app(hybrid, practice) as session:
        conflicts = session.execute(
            text(
                "SELECT state, fields -> 'city' AS city FROM writeback_conflict "
                "WHERE table_name = 'client' AND row_id = :c"
            ),
            {"c": local_id},
        ).all()
        row = session.execute(text("SELECT city, last_name FROM client WHERE id = :c"), {"c": local_id}).one()
    assert [(c.state, c.city["local"], c.city["animana"]) for c in conflicts] == [("open", "Houten", "Zeist")]
    assert tuple(row) == ("Houten", "Anders")  # the surname Animana's user gave it was taken in


def _synced_client(world: SyncWorld) -> tuple[int, int]:
    with as_app(world, world.practices[0]) as session:
        local_id, animana_id = session.execute(
            text("SELECT id, animana_id FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1")
        ).one()
    return local_id, int(animana_id)


def _set_city(world: SyncWorld, client_id: int, city: str) -> None:
    with as_app(world, world.practices[0]) as session:
        session.execute(text("UPDATE client SET city = :v WHERE id = :c"), {"v": city, "c": client_id})


def _open_city_conflicts(world: SyncWorld, client_id: int) -> list[tuple[str, str]]:
    with as_app(world, world.practices[0]) as session:
        return [
            (f["local"], f["animana"])
            for (f,) in session.execute(
                text(
                    "SELECT fields -> 'city' FROM writeback_conflict WHERE table_name = 'client' AND row_id = :c "
                    "AND state = 'open'"
                ),
                {"c": client_id},
            )
        ]


def test_an_animana_user_typing_the_value_of_a_write_of_ours_that_never_left_gets_a_conflict(
    hybrid: SyncWorld,
):
    """Our 'Zeist' was handed over, but the dispatcher was killed before the request left; staff then typed
    'Houten', and an Animana user 'Zeist'. The sync cannot tell that 'Zeist' from ours, so it waits; the re-send of
    the very same request is refused as stale — which Animana would not do had it taken it — and the user's
    'Zeist' becomes a conflict, not overwritten by 'Houten' without a word."""
    practice = hybrid.practices[0]
    local_id, animana_id = _synced_client(hybrid)
    _set_city(hybrid, local_id, "Zeist")
    with as_app(hybrid, practice) as session:  # a dispatcher hands the entry over and is killed
        (entry,) = due_entries(session, practice.practice_id, 10, master_key=MASTER_KEY)
    with as_app(hybrid, practice) as session:
        note_handed(session, practice.practice_id, {entry.id: request_key(entry)})
    _set_city(hybrid, local_id, "Houten")
    hybrid.sim.edit(practice.animana_id, "relations", animana_id, {"city": "Zeist"})
    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    assert _open_city_conflicts(hybrid, local_id) == []  # not decided yet: ours or theirs?

    report = _push(hybrid)

    assert report.stale == 1, report
    assert _open_city_conflicts(hybrid, local_id) == [("Houten", "Zeist")]
    (after,) = [r for r in _relations(hybrid) if r["id"] == animana_id]
    assert after["city"] == "Zeist"  # the user's value stands in Animana until a person decides


def test_a_write_of_ours_applied_with_its_answer_lost_is_known_as_ours_once_its_re_send_is_replayed(
    hybrid: SyncWorld,
):
    """Our 'Zeist' reached Animana but its answer was lost; staff then typed 'Houten'. The sync finds 'Zeist' and
    waits; the re-send of the same request is answered with the first answer (Animana took it), so 'Zeist' was
    ours: 'Houten' follows it out, no conflict, and no sync afterwards puts 'Zeist' back here."""
    practice = hybrid.practices[0]
    local_id, animana_id = _synced_client(hybrid)
    _set_city(hybrid, local_id, "Zeist")
    hybrid.sim.configure(response_lost=1.0)
    assert _push(hybrid, max_entries=1).retried == 1
    hybrid.sim.configure(response_lost=0.0)
    _set_city(hybrid, local_id, "Houten")
    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)
    _due_now(hybrid)

    report = _push(hybrid)
    with hybrid.client() as client:
        sync_all(hybrid.db.app_engine, client, [practice], master_key=MASTER_KEY)

    assert (report.sent, report.stale, report.dead) == (2, 0, 0), report
    assert _open_city_conflicts(hybrid, local_id) == []
    (after,) = [r for r in _relations(hybrid) if r["id"] == animana_id]
    assert after["city"] == "Houten"
    with as_app(hybrid, practice) as session:
        row = session.execute(
            text("SELECT city, writeback_pending FROM client WHERE id = :c"), {"c": local_id}
        ).one()
        held = session.execute(text("SELECT count(*) FROM writeback_incoming")).scalar_one()
    assert (tuple(row), held) == (("Houten", False), 0)


def _relations(world: SyncWorld) -> list[dict]:
    with world.client() as client:
        return [
            r.model_dump(mode="json") for r in client.iter_records(world.practices[0].animana_id, "relations")
        ]
