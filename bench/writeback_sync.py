"""Phase 4 of bench/writeback.py: the incremental sync's time with change capture and conflict detection ÷ without,
on the same incremental change set.

Two warehouses synced in full from one simulator (`bench.ingest` world: 4 medium practices): "with" keeps the
capture and hold triggers, "without" has them disabled (its settlement then finds nothing held). Each round
changes Animana once (`/_sim/mutate`) and makes the same local edits in both (chosen by Animana id, the same
values), then syncs both incrementally, practice by practice: each practice in both arms one after the other,
the arm that goes first alternating, so both see the same Animana changes and the same local edits and a change of
the machine's load weighs on both alike. A round's time per arm is the sum over its practices. The "with" arm's
time is split into the settlement (timed around `settle` inside the sync) and the rest, so the cost of holding +
settling the rows the local edits left pending is told apart from the loader's.

Before each timed round both warehouses are analysed and checkpointed (`quiet`), so that neither autovacuum nor the
checkpointer runs during one arm's sync and not the other's.

The local edits are never pushed (no dispatcher here): the rows they touch stay pending round after round, as they
would be when Animana is unreachable. Animana's later changes to them are taken by the loader when they leave the
edited columns alone (migration 0620), and held and settled when they touch one (a postcode changed on both sides).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

import connectors.animana.sync.practice as sync_module
from bench.ingest import (
    MASTER_KEY,
    api_totals,
    libpq,
    link_practices,
    new_database,
    run_sync,
    start_simulator,
)
from bench.writeback_mix import TOWNS
from connectors.animana.client import AnimanaClient
from connectors.animana.sync.links import LinkedPractice, linked_practices
from connectors.animana.sync.practice import sync_practice
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.db import app_url, make_engine
from warehouse.kernel.tenancy import AccessContext, tenant_session


@dataclass
class SyncTimes:
    with_s: list[float] = field(default_factory=list)
    without_s: list[float] = field(default_factory=list)
    settle_s: list[float] = field(default_factory=list)  # of the "with" arm, inside its sync
    held_rows: list[int] = field(default_factory=list)  # rows the "with" arm's settlements took up, per round
    full_s: float = 0.0

    def ratio(self) -> float:
        return statistics.median(self.with_s) / statistics.median(self.without_s)

    def ratio_without_settle(self) -> float:
        rest = [w - s for w, s in zip(self.with_s, self.settle_s, strict=True)]
        return statistics.median(rest) / statistics.median(self.without_s)


class SettleTimer:
    """Times every `settle` the sync makes (it settles in each batch's transaction) and counts the rows it took;
    with `profile`, collects a cProfile of the settlements to tell where their time goes."""

    def __init__(self, profile: bool = False) -> None:
        self.seconds, self.rows = 0.0, 0
        self.original = sync_module.settle
        self.profile = cProfile.Profile() if profile else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        if self.profile is not None:
            report = self.profile.runcall(self.original, *args, **kwargs)
        else:
            report = self.original(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.rows += report.rows
        return report

    @contextmanager
    def installed(self) -> Iterator[SettleTimer]:
        sync_module.settle = self  # type: ignore[assignment]
        try:
            yield self
        finally:
            sync_module.settle = self.original


def set_capture(url: str, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        for table in MIRRORED:
            conn.execute(
                f'ALTER TABLE "{table}" {verb} TRIGGER writeback_capture, {verb} TRIGGER writeback_hold'
            )


def quiet(urls: list[str]) -> None:
    """Both warehouses' maintenance done before a timed round: statistics fresh (autovacuum would analyse the
    tables the last round changed) and a checkpoint written — otherwise autovacuum or the checkpointer lands on
    whichever arm runs at that moment (on 2 cores the settlement's time varied 2× between runs of the same code)."""
    for url in urls:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("ANALYZE")
            conn.execute("CHECKPOINT")


def choose_edits(app_engine: Any, practice: LinkedPractice, n: int, rng: random.Random) -> dict[str, list[tuple[str, str, str]]]:  # fmt: skip
    """Staff edits between two syncs, by Animana id (local ids differ between the two warehouses): client towns and
    postcodes, and the reasons of booked appointments. Animana's side (`/_sim/mutate`) changes clients' phones,
    e-mails, postcodes and active flags and cancels appointments: a postcode changed on both sides is a clash the
    settlement decides; the other edits of a row Animana also changed touch different columns (the loader takes
    Animana's, migration 0620)."""
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as s:
        clients = s.execute(
            text("SELECT animana_id FROM client WHERE animana_id IS NOT NULL ORDER BY 1")
        ).scalars()
        booked = s.execute(
            text(
                "SELECT animana_id FROM appointment WHERE status = 'booked' AND animana_id IS NOT NULL ORDER BY 1"
            )
        ).scalars()
        clients, booked = list(clients), list(booked)
    return {
        "client": [
            (a, "city", rng.choice(TOWNS))
            if rng.random() < 0.5
            else (a, "postcode", f"35{rng.randrange(100):02d} XY")
            for a in rng.sample(clients, min(n // 2, len(clients)))
        ],
        "appointment": [
            (a, "reason", "bench: " + rng.choice(TOWNS)) for a in rng.sample(booked, min(n // 2, len(booked)))
        ],
    }


def make_edits(
    app_engine: Any, practice: LinkedPractice, edits: dict[str, list[tuple[str, str, str]]]
) -> None:
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as s:
        for table, changes in edits.items():
            for animana_id, column, value in changes:
                s.execute(
                    text(f"UPDATE {table} SET {column} = :v WHERE animana_id = :a"),
                    {"v": value, "a": animana_id},
                )


def timed_sync(app_engine: Any, client: AnimanaClient, practices: list[LinkedPractice]) -> float:
    started = time.perf_counter()
    for practice in practices:
        sync_practice(app_engine, client, practice, master_key=MASTER_KEY)
    return time.perf_counter() - started


def sync_overhead(server: str, args: argparse.Namespace, client_of: Any, prepare: Any) -> SyncTimes:
    """`client_of(base)`: an AnimanaClient; `prepare(url)`: appointment types and modes as in the other phases."""
    sim = start_simulator(args.sync_practices, args.sync_scale, args.port + 1)
    base = f"http://127.0.0.1:{args.port + 1}"
    times = SyncTimes()
    try:
        api_totals(base, args.sync_practices)
        urls = {}
        for arm in ("with", "without"):
            urls[arm] = new_database(server)
            link_practices(urls[arm], args.sync_practices)
            prepare(urls[arm])
            full_s, _ = run_sync(urls[arm], base, 2)
            times.full_s = max(times.full_s, full_s)
        set_capture(urls["without"], False)
        engines = {arm: make_engine(app_url(url)) for arm, url in urls.items()}
        practices = {arm: linked_practices(make_engine(url)) for arm, url in urls.items()}
        rng = random.Random(17)
        timer = SettleTimer(profile=args.profile_settle)
        with client_of(base) as client, timer.installed():
            for round_ in range(args.sync_rounds):
                for practice in practices["with"]:
                    httpx.post(f"{base}/_sim/mutate", timeout=120, json={
                        "practice": practice.animana_id, "edits": args.sync_edits,
                        "cancellations": args.sync_edits // 5, "seed": round_}).raise_for_status()  # fmt: skip
                for mine, theirs in zip(practices["with"], practices["without"], strict=True):
                    edits = choose_edits(engines["with"], mine, args.sync_edits // 2, rng)
                    make_edits(engines["with"], mine, edits)
                    make_edits(engines["without"], theirs, edits)
                quiet(list(urls.values()))
                # Practice by practice, the arms alternating: a change of the machine's load (other processes)
                # lands on both arms within a second of each other rather than on one arm's whole round.
                spent = {"with": 0.0, "without": 0.0, "settle": 0.0}
                held = 0
                for i, pair in enumerate(zip(practices["with"], practices["without"], strict=True)):
                    for arm in ("with", "without") if (round_ + i) % 2 == 0 else ("without", "with"):
                        settled_s, settled_rows = timer.seconds, timer.rows
                        spent[arm] += timed_sync(engines[arm], client, [pair[arm == "without"]])
                        if arm == "with":
                            spent["settle"] += timer.seconds - settled_s
                            held += timer.rows - settled_rows
                times.with_s.append(spent["with"])
                times.without_s.append(spent["without"])
                times.settle_s.append(spent["settle"])
                times.held_rows.append(held)
                print(f"  sync round {round_ + 1}/{args.sync_rounds}: with {times.with_s[-1]:,.2f} s (settle "
                      f"{times.settle_s[-1]:,.2f} s, {times.held_rows[-1]} held rows), without "
                      f"{times.without_s[-1]:,.2f} s", flush=True)  # fmt: skip
        for engine in engines.values():
            engine.dispose()
        if timer.profile is not None:
            print("  where the settlements' time went (cProfile, cumulative):")
            pstats.Stats(timer.profile).sort_stats("cumulative").print_stats(25)
        return times
    finally:
        sim.terminate()
        sim.wait(timeout=10)
