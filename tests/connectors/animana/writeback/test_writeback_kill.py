"""A dispatcher killed with SIGKILL in the middle of a batch, against a slow Animana, then restarted: every local
write is in Animana exactly once."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox

ROOT = Path(__file__).resolve().parents[4]
NAMES = [f"Doorgehaald-{n}" for n in range(1, 8)]


def _start_dispatcher(world: SyncWorld) -> subprocess.Popen[str]:
    arguments = {
        "app_url": world.db.app_engine.url.render_as_string(hide_password=False),
        "sim_url": world.sim.base_url,
        "client_id": world.sim.client_id,
        "secret": world.sim.client_secret,
        "practice": dataclasses.asdict(world.practices[0]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.connectors.animana.writeback.push_loop", json.dumps(arguments)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _in_animana(world: SyncWorld) -> list[tuple[str, str]]:
    with world.client() as client:
        relations = [
            r for r in client.iter_records(world.practices[0].animana_id, "relations") if not r.deleted
        ]
    return sorted((r.last_name, str(r.id)) for r in relations if r.last_name in NAMES)


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_doubles_nothing(hybrid: SyncWorld):
    practice = hybrid.practices[0]
    with as_app(hybrid, practice) as session:
        for name in NAMES:
            session.execute(
                text("INSERT INTO client (practice_id, last_name) VALUES (:p, :n)"),
                {"p": practice.practice_id, "n": name},
            )
    hybrid.sim.configure(faults=1.0, fault_kinds=["slow"], slow_seconds=0.3)
    dispatcher = _start_dispatcher(hybrid)
    assert dispatcher.stdout is not None
    # One batch of 3 committed; the next batch's writes go at once, so its outcomes are reported together.
    sent = [dispatcher.stdout.readline() for _ in range(5)]
    os.kill(dispatcher.pid, signal.SIGKILL)
    dispatcher.wait(timeout=30)
    assert all(line.startswith("sent ") for line in sent)
    states = [e["state"] for e in outbox(hybrid, practice)]
    assert states == ["done"] * 3 + ["pending"] * 4  # the killed batch's claims are pending again
    hybrid.sim.configure(faults=0.0)
    assert len(_in_animana(hybrid)) == 6  # though the killed batch's three had reached Animana

    with hybrid.client() as client:
        report = push(hybrid.db.app_engine, client, practice, master_key=MASTER_KEY)
    assert (report.sent, report.dead) == (4, 0)
    assert [e["state"] for e in outbox(hybrid, practice)] == ["done"] * 7
    in_animana = _in_animana(hybrid)
    with as_app(hybrid, practice) as session:
        local = session.execute(
            text(
                "SELECT last_name, animana_id FROM client WHERE last_name LIKE 'Doorgehaald-%' ORDER BY last_name"
            )
        ).all()
    assert in_animana == sorted(
        tuple(row) for row in local
    )  # each exactly once, and the one the row points at
    assert len(in_animana) == len(NAMES)
