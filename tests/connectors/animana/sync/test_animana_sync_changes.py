"""Incremental syncs after upstream changes, faults on the wire, and a sync killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld, link_world

ROOT = Path(__file__).resolve().parents[4]


def _sync(world: SyncWorld, **kwargs):  # noqa: ANN003, ANN202
    with world.client(**kwargs.pop("settings", {})) as client:
        return sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, **kwargs)


def test_incremental_sync_applies_exactly_the_upstream_edits_cancellations_and_deletions(animana_world):
    world = animana_world
    _sync(world)
    changes = world.sim.mutate(1002, edits=12, cancellations=3, deletions=6, seed=5)
    results = _sync(world)
    by_code = {r.practice.code: r for r in results}
    other = by_code["sync-1001"].totals()
    assert (other.inserted, other.updated, other.deleted) == (0, 0, 0)  # untouched practice: nothing
    counts = by_code["sync-1002"].counts
    deleted = {}
    for change in changes["deleted"]:
        deleted[change["resource"]] = deleted.get(change["resource"], 0) + 1
    for resource in ("relations", "animals", "agenda"):
        assert counts[resource].deleted == deleted.get(resource, 0), resource
    cancelled_ids = {str(c["id"]) for c in changes["cancelled"]}
    edited = len(changes["edited"])
    updated = sum(counts[r].updated for r in ("relations", "animals", "staff"))
    assert 0 < updated <= edited
    assert counts["agenda"].updated == len(cancelled_ids - {str(c["id"]) for c in changes["deleted"]})
    assert all(c.inserted == 0 for c in counts.values())
    world.assert_counts_match()
    with world.db.system() as session:
        statuses = dict(
            session.execute(
                text("SELECT animana_id, status FROM appointment WHERE animana_id = ANY(:ids)"),
                {"ids": list(cancelled_ids)},
            ).all()
        )
    assert cancelled_ids and set(statuses.values()) == {"cancelled"}
    # and the incremental path ends where a fresh full sync of the changed API ends (live rows)
    again = _sync(world)
    assert all(r.totals().inserted + r.totals().updated + r.totals().deleted == 0 for r in again)


def test_faults_on_the_wire_do_not_change_the_result(animana_world, other_db):
    world = animana_world
    clean = SyncWorld(other_db, world.sim, link_world(other_db, [1001, 1002]))
    _sync(clean)
    world.sim.configure(
        faults=0.25, fault_kinds=["error_500", "error_503", "truncate", "slow"], slow_seconds=0.05,
        rate_limit=8, rate_window=1.0, token_ttl=0.4,
    )  # fmt: skip
    try:
        _sync(world, settings={"page_size": 50})
    finally:
        world.sim.configure(faults=0.0, rate_limit=0, token_ttl=3600.0)
    stats = world.sim.stats()
    assert stats["rate_limited"] > 0 and stats["tokens"] > 2
    assert sum(stats[k] for k in ("error_500", "error_503", "truncate")) > 0
    assert world.snapshot() == clean.snapshot()


CHILD = """
import sys
from connectors.animana import AnimanaClient, load_settings
from connectors.animana.sync.links import linked_practices
from connectors.animana.sync.service import sync_all
from warehouse.kernel.db import app_url, make_engine
admin = make_engine(sys.argv[1])
app = make_engine(app_url(sys.argv[1]))
client = AnimanaClient(load_settings(page_size=7))
workers = int(sys.argv[2])
sync_all(app, client, linked_practices(admin), master_key=bytes(range(32)), workers=workers, processes=workers > 1)
print("finished")
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "worker-processes"])
def test_a_sync_killed_mid_way_resumes_to_the_same_state_without_duplicates(animana_world, other_db, workers):
    """Killed mid-way (with worker processes: the parent is killed, and its workers must not outlive it), the
    rerun reaches the state of an uninterrupted sync."""
    world = animana_world
    clean = SyncWorld(other_db, world.sim, link_world(other_db, [1001, 1002]))
    _sync(clean)
    world.sim.configure(faults=1.0, fault_kinds=["slow"], slow_seconds=0.03)
    env = {
        **os.environ,
        "VETCONNECT_ANIMANA_URL": world.sim.base_url,
        "VETCONNECT_ANIMANA_CLIENT_ID": world.sim.client_id,
        "VETCONNECT_ANIMANA_CLIENT_SECRET": world.sim.client_secret,
        "PYTHONPATH": str(ROOT),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, world.db.admin_url, str(workers)], env=env, cwd=ROOT
    )
    workers_seen: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with world.db.system() as session:
                loaded = session.execute(text("SELECT count(*) FROM patient")).scalar_one()
            if loaded > 0:
                break
            assert child.poll() is None, "the sync finished before it could be killed"
            time.sleep(0.05)
        workers_seen = _children(child.pid) - {child.pid}
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        gone = time.monotonic() + 10
        while any(map(_alive, workers_seen)) and time.monotonic() < gone:
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
        world.sim.configure(faults=0.0)
    assert child.returncode == -signal.SIGKILL
    if workers > 1:  # the spawned workers (and their resource tracker) were running, and died with the parent
        assert len(workers_seen) >= 2
        assert not [pid for pid in workers_seen if _alive(pid)]
    with world.db.system() as session:
        running = session.execute(text("SELECT count(*) FROM sync_run WHERE status = 'running'")).scalar_one()
        partial = session.execute(text("SELECT count(*) FROM patient")).scalar_one()
    assert running >= 1 and partial > 0  # killed mid-way: some pages committed, the run never finished
    _sync(world)
    assert world.snapshot() == clean.snapshot()
    world.assert_counts_match()
