"""Records written through the API come back through the sync like any other: each writable resource's created
record is inserted (none quarantined), an update and a deletion are followed, and the mirror's counts match."""

from __future__ import annotations

from sqlalchemy import text

from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.write_support import WRITABLE, write_bodies


def _sync(world: SyncWorld) -> dict:
    with world.client() as client:
        results = sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
    return {r.practice.code: r for r in results}["sync-1002"].counts


def test_written_records_sync_back_like_generated_ones(synced_world):
    world = synced_world
    with world.client() as client:
        bodies = write_bodies(client, 1002)
        written = {r: client.create(1002, r, bodies[r], idempotency_key=f"sync-{r}").record for r in WRITABLE}
    counts = _sync(world)
    assert {r: (counts[r].inserted, counts[r].quarantined) for r in WRITABLE} == dict.fromkeys(
        WRITABLE, (1, 0)
    )
    world.assert_counts_match()

    consult = written["consults"]
    with world.client() as client:
        client.update(
            1002, "consults", consult["id"], {"soap": {"plan": "controle vrijdag"}}, idempotency_key="s1"
        )
        client.delete(1002, "payments", written["payments"]["id"], idempotency_key="s2")
    counts = _sync(world)
    assert (counts["consults"].updated, counts["payments"].deleted) == (1, 1)
    world.assert_counts_match()
    practice = next(p.practice_id for p in world.practices if p.code == "sync-1002")
    with world.db.system() as session:
        visit = session.execute(
            text("SELECT subjective, plan FROM visit WHERE practice_id = :p AND animana_id = :id"),
            {"p": practice, "id": str(consult["id"])},
        ).one()
        invoice = session.execute(
            text("SELECT number, total_incl_cents FROM invoice WHERE practice_id = :p AND animana_id = :id"),
            {"p": practice, "id": str(written["invoices"]["id"])},
        ).one()
    assert tuple(visit) == ("krabt al een week", "controle vrijdag")
    assert tuple(invoice) == (written["invoices"]["number"], written["invoices"]["total_cents"])
