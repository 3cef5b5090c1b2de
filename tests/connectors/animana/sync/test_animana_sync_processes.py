"""Practices synced in worker processes (`sync_all(..., processes=True)`, what `vetconnect sync animana
--workers N` runs) end where syncing them one at a time ends, with progress relayed to the parent; a load
transaction the server rolls back for a deadlock runs again."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from connectors.animana import NotFound
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import in_transaction
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld, link_world
from warehouse.kernel.tenancy import AccessContext, tenant_session


def test_worker_processes_reach_the_same_state_as_one_practice_at_a_time(animana_world, other_db):
    world = animana_world
    serial = SyncWorld(other_db, world.sim, link_world(other_db, [1001, 1002]))
    with serial.client() as client:
        one_by_one = sync_all(serial.db.app_engine, client, serial.practices, master_key=MASTER_KEY)
    progress: list[tuple[str, str, int]] = []
    with world.client(page_size=50) as client:
        in_workers = sync_all(
            world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2, processes=True,
            progress=lambda code, resource, records: progress.append((code, resource, records)),
        )  # fmt: skip

    assert world.snapshot() == serial.snapshot()
    world.assert_counts_match()
    assert [r.practice for r in in_workers] == world.practices  # results in the order given
    assert [r.totals() for r in in_workers] == [r.totals() for r in one_by_one]
    assert [r.records for r in in_workers] == [r.records for r in one_by_one]
    for result in in_workers:  # every loaded batch was reported to the parent, per practice
        code = result.practice.code
        assert sum(n for c, _, n in progress if c == code) == result.records > 0
    with world.client() as client:  # and a second run in workers finds nothing new
        again = sync_all(
            world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2, processes=True
        )
    assert all(r.totals().inserted + r.totals().updated + r.totals().deleted == 0 for r in again)


def test_an_error_in_a_worker_process_reaches_the_caller_with_its_type(animana_world):
    world = animana_world
    unknown = LinkedPractice(world.practices[0].practice_id, world.practices[0].franchise_id, "ghost", 9999)
    with world.client() as client, pytest.raises(NotFound, match="9999"):
        sync_all(
            world.db.app_engine, client, [world.practices[1], unknown], master_key=MASTER_KEY, workers=2,
            processes=True,
        )  # fmt: skip


def test_a_batch_transaction_rolled_back_for_a_deadlock_runs_again(animana_world):
    """Concurrent practices of one franchise can deadlock on its shared product list: the server rolls one
    transaction back, and `in_transaction` runs it again. A real deadlock between two sessions here."""
    engine = animana_world.db.app_engine
    context = AccessContext.for_practices([animana_world.practices[0].practice_id])
    pid = animana_world.practices[0].practice_id
    touch = text("UPDATE sync_state SET cursor = :v WHERE practice_id = :pid AND resource = :r")
    with tenant_session(engine, context) as session:
        for resource in ("lock-a", "lock-b"):
            session.execute(
                text("INSERT INTO sync_state (practice_id, source, resource) VALUES (:pid, 'animana', :r)"),
                {"pid": pid, "r": resource},
            )
    other_holds_b, work_holds_a = threading.Event(), threading.Event()
    other_failed: list[BaseException] = []
    attempts: list[int] = []

    def work(session: Session) -> int:
        attempts.append(1)
        session.execute(touch, {"v": "work", "pid": pid, "r": "lock-a"})
        if len(attempts) == 1:
            work_holds_a.set()
            other_holds_b.wait(10)
        session.execute(touch, {"v": "work", "pid": pid, "r": "lock-b"})  # first time: waits for the other
        return len(attempts)

    def other() -> None:
        try:
            with tenant_session(engine, context) as session:
                session.execute(touch, {"v": "other", "pid": pid, "r": "lock-b"})
                other_holds_b.set()
                work_holds_a.wait(10)
                time.sleep(
                    0.3
                )  # `work` waits first, so its deadlock check fires first: it is the one rolled back
                session.execute(touch, {"v": "other", "pid": pid, "r": "lock-a"})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            other_failed.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    ran = in_transaction(engine, context, work)
    thread.join(10)

    assert (
        ran == 2 and not other_failed
    )  # rolled back once, then committed; the other transaction committed too
    with tenant_session(engine, context) as session:
        final = dict(
            session.execute(
                text("SELECT resource, cursor FROM sync_state WHERE resource LIKE 'lock-%'")
            ).all()
        )
    assert final == {"lock-a": "work", "lock-b": "work"}


def test_workers_do_not_run_the_hosts_main_script(animana_world, tmp_path, monkeypatch):
    """Spawned workers would re-run the parent's ``__main__`` file first; a host whose ``__main__`` is some
    script (Streamlit's AppTest leaves a page script there) must not have it run in every worker."""
    script = tmp_path / "host_script.py"
    script.write_text("raise SystemExit('the host script ran in a worker')\n")
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.setattr(main, "__file__", str(script), raising=False)
    world = animana_world
    with world.client() as client:
        results = sync_all(
            world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2, processes=True
        )
    assert all(r.records > 0 for r in results)
    world.assert_counts_match()
    assert main.__file__ == str(script) and main.__spec__ is None  # the host's __main__ is left as it was
