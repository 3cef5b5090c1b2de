"""A merge of two synced clients of a linked practice, over real HTTP to the simulator: every moved row of a mirrored
table and the retired duplicate become outbox entries through the ordinary change capture, and the dispatcher sends
them, so Animana's appointments point at the surviving relation and the duplicate relation is inactive there."""

from __future__ import annotations

from sqlalchemy import text

from connectors.animana.writeback.dispatcher import push
from connectors.animana.writeback.sender import Backoff, Sender
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox, set_modes
from warehouse.clients.merge import MergeOutcome, RecordRef, merge_clients
from warehouse.security.permissions import Actor

QUICK = Backoff(initial_s=0.01, cap_s=0.02, parent_wait_s=0.01)


def _merge_busiest_clients(world: SyncWorld, tables: tuple[str, ...]) -> tuple[MergeOutcome, dict, set]:
    """Merge the synced client with the second most appointments into the one with the most; (outcome, the
    duplicate's appointments {local id: Animana id}, every (table, row) of ``tables`` the merge moved)."""
    practice = world.practices[0]
    with as_app(world, practice) as session:
        (survivor, _), (duplicate, _) = session.execute(
            text(
                "SELECT c.id, count(*) FROM client c JOIN appointment a ON a.client_id = c.id "
                "WHERE c.animana_id IS NOT NULL GROUP BY c.practice_id, c.id ORDER BY 2 DESC, c.id LIMIT 2"
            )
        ).all()
        appointments = dict(
            session.execute(
                text("SELECT id, animana_id FROM appointment WHERE client_id = :c"), {"c": duplicate}
            ).all()
        )
        moved = {("client", duplicate)} | {
            (table, row_id)
            for table in tables
            for row_id in session.scalars(
                text(f"SELECT id FROM {table} WHERE client_id = :c"), {"c": duplicate}
            )
        }
        outcome = merge_clients(
            session, Actor.at(None, practice.practice_id, {"practice_manager"}),
            RecordRef(practice.practice_id, survivor), RecordRef(practice.practice_id, duplicate),
        )  # fmt: skip
    return outcome, appointments, moved


def _push_and_dead_letters(world: SyncWorld) -> tuple[int, list[tuple[str, str]]]:
    practice = world.practices[0]
    with world.client() as client:
        report = push(
            world.db.app_engine, client, practice, master_key=MASTER_KEY, sender=Sender(client, backoff=QUICK)
        )
    dead = [(e["table_name"], e["last_error"]) for e in outbox(world, practice) if e["state"] == "dead"]
    return report.sent, dead


def test_a_merge_in_hybrid_mode_is_written_back_to_animana(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    set_modes(hybrid, practice, "native", ("invoices",))  # clients and agenda hybrid; invoices below
    outcome, appointments, moved = _merge_busiest_clients(hybrid, ("appointment",))
    assert outcome.moved["appointment"] == len(appointments) > 0
    captured = {(e["table_name"], e["row_id"]) for e in outbox(hybrid, practice) if e["state"] == "pending"}
    assert captured == moved

    sent, dead = _push_and_dead_letters(hybrid)
    assert (sent, dead) == (len(moved), [])
    with as_app(hybrid, practice) as session:
        survivor_aid, duplicate_aid = (
            session.scalar(text("SELECT animana_id FROM client WHERE id = :c"), {"c": c})
            for c in (outcome.survivor_id, outcome.duplicate_id)
        )
    with hybrid.client() as client:
        for animana_id in appointments.values():
            assert client.get(practice.animana_id, "agenda", int(animana_id)).relation_id == int(survivor_aid)
        assert client.get(practice.animana_id, "relations", int(duplicate_aid)).active is False
    assert {e["state"] for e in outbox(hybrid, practice)} == {"done"}


def test_a_merge_moves_the_duplicates_invoices_in_animana_too(hybrid: SyncWorld):
    set_modes(hybrid, hybrid.practices[0], "hybrid", ("invoices",))
    _, _, moved = _merge_busiest_clients(hybrid, ("appointment", "invoice", "payment"))
    assert any(table == "invoice" for table, _ in moved)
    sent, dead = _push_and_dead_letters(hybrid)
    assert (sent, dead) == (len(moved), [])
