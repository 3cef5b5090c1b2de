"""Write-back benchmark (not a test; prints figures): local writes reaching Animana through the outbox.

    .venv/bin/python bench/writeback.py [--writes 1000] [--kills 50] [--edits 100] [--lag-seconds 30]

Embedded PostgreSQL and the simulator in its own process (`bench.ingest`); 7 small practices synced, every module
in hybrid mode. Writes are raw SQL as the application role (`writeback_mix`), captured by the triggers.

1. Throughput (practices 6 and 7): a backlog of creates and updates pushed by `dispatcher.push` in this process,
   then the same HTTP writes (recorded from the dispatcher's own calls; appointments a year later so they do not
   double-book) sent by a bare loop with the same client, one attempt each, as many in flight as the dispatcher had.
   Ratio dispatcher ÷ bare, for the dispatcher as it runs (several writes in flight) on practice 6 and one write at
   a time on practice 7, each over --throughput-rounds rounds (dispatcher, then its bare loop), so that a change
   of the machine's load during the phase weighs on both arms alike.
2. Lag (practices 1-5): 20 writes/s for --lag-seconds, the dispatcher running as a subprocess; lag = the outbox
   entry's created_at (stamped by the capture trigger in the writing transaction) → its sent_at (stamped after
   Animana's answer), so both ends are on the late side of the true commit → visible.
3. Faults (practices 1-5): writes while the simulator answers 5xx, rate-limits (429 + Retry-After), loses answers
   after committing, and edits records just written; the dispatcher is SIGKILLed once it has sent something, and
   restarted; in each kill window Animana users edit the field a still-unsent local change changed (`POST
   /_sim/edit`). The faults stay on until --writes writes, --kills kills and --edits such edits are made and each
   fault kind reached --min-faults. Faults off, the outbox drained, a sync, then every (row, field) the writes
   gave a value is reckoned against Animana's record over HTTP, and the conflicts against the Animana-side edits
   (`writeback_reckon`).
4. Sync overhead (`writeback_sync`): two warehouses of 4 medium practices, one with change capture, one without,
   each round the same Animana changes and local edits for both. Ratio of the medians.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import MASTER_KEY, SECRET, libpq, link_practices, new_database, start_simulator  # noqa: E402
from bench.tenancy import percentile  # noqa: E402
from bench.writeback_mix import (  # noqa: E402
    RESOURCE_OF,
    SURNAMES,
    TOWNS,
    AnimanaReader,
    EditWatcher,
    Pool,
    Written,
    load_pools,
    write_one,
)  # fmt: skip
from bench.writeback_reckon import Reckoning, reckon  # noqa: E402
from bench.writeback_sync import SyncTimes, sync_overhead  # noqa: E402
from connectors.animana.client import AnimanaClient  # noqa: E402
from connectors.animana.resources.agenda import APPOINTMENT_TYPE_CODES  # noqa: E402
from connectors.animana.settings import load_settings  # noqa: E402
from connectors.animana.sync.links import LinkedPractice, linked_practices  # noqa: E402
from connectors.animana.sync.practice import sync_practice  # noqa: E402
from connectors.animana.writeback.dispatcher import CONCURRENCY, push  # noqa: E402
from connectors.animana.writeback.sender import ONE_ATTEMPT, Sender  # noqa: E402
from vetconnect import pgserver  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session  # noqa: E402
from warehouse.schema.tenancy import MODULES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IDLE_S = 0.05  # the dispatcher subprocess looks for due entries this often when it found none
FAULTS = {"faults": 0.08, "fault_kinds": ["error_500", "error_503"], "response_lost": 0.12, "concurrent_edits": 0.05,
          "rate_limit": 25, "rate_window": 1.0}  # fmt: skip
NO_FAULTS = {"faults": 0.0, "response_lost": 0.0, "concurrent_edits": 0.0, "rate_limit": 0}
EDITABLE = {"client": ("city", "last_name"), "appointment": ("reason",)}  # fields overlapping edits change


def animana_client(base: str) -> AnimanaClient:
    return AnimanaClient(load_settings(url=base, client_id="vetconnect-sim", client_secret=SECRET))


def configure(base: str, settings: dict[str, Any]) -> None:
    httpx.post(f"{base}/_sim/config", json=settings, timeout=10).raise_for_status()


def prepare_practices(url: str) -> None:
    """The franchise's appointment types (as onboarding sets them up), and every module of every practice in hybrid
    mode."""
    engine = make_engine(url)
    with system_session(engine, reason="bench: appointment types, modules in hybrid mode") as s:
        for (fid,) in s.execute(text("SELECT id FROM tenant WHERE kind = 'franchise'")).all():
            for name, code in APPOINTMENT_TYPE_CODES.items():
                s.execute(
                    text(
                        "INSERT INTO appointment_type (franchise_id, code, name, duration_minutes) "
                        "VALUES (:f, :code, :name, 20) ON CONFLICT DO NOTHING"
                    ),
                    {"f": fid, "code": code, "name": name},
                )
        for (pid,) in s.execute(text("SELECT id FROM tenant WHERE kind = 'practice'")).all():
            for module in MODULES:
                s.execute(
                    text(
                        "INSERT INTO practice_module_mode (practice_id, module, mode) VALUES (:p, :m, 'hybrid') "
                        "ON CONFLICT (practice_id, module) DO UPDATE SET mode = 'hybrid'"
                    ),
                    {"p": pid, "m": module},
                )
    engine.dispose()


def outbox_count(url: str, states: tuple[str, ...], practices: list[int], since_id: int = 0) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute(
            "SELECT count(*) FROM writeback_outbox WHERE state = ANY(%s) AND practice_id = ANY(%s) AND id > %s",
            (list(states), practices, since_id),
        ).fetchone()[0]  # type: ignore[index]


def max_outbox_id(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM writeback_outbox").fetchone()[0]  # type: ignore[index]


# --- the dispatcher as a process of its own (killed with SIGKILL by the fault phase) -------------------------------


PUSH_FAILED = "push failed"  # a line the dispatcher subprocess writes to stderr per failed push


def push_noting_failure(app_engine: Any, client: AnimanaClient, practice: LinkedPractice) -> int:
    """One practice's push; a failure is written to stderr and the other practices go on, as each practice is a
    partition of its own in the Dagster job (one practice's failure does not stop the others')."""
    try:
        return push(app_engine, client, practice, master_key=MASTER_KEY).handled
    except DBAPIError as exc:
        first_line = str(exc.orig).splitlines()[0]
        print(
            f"{PUSH_FAILED}: {practice.code}: {type(exc.orig).__name__}: {first_line}",
            file=sys.stderr,
            flush=True,
        )
        return 0


def dispatch_forever(url: str, base: str, codes: list[str]) -> None:
    app_engine = make_engine(app_url(url))
    practices = linked_practices(make_engine(url), codes)
    with animana_client(base) as client:
        while True:
            if not sum(push_noting_failure(app_engine, client, p) for p in practices):
                time.sleep(IDLE_S)


def start_dispatcher(url: str, base: str, codes: list[str], errors: Path) -> subprocess.Popen:
    with errors.open("a") as stderr:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, __file__, "--dispatch", url, base, *codes], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip


def push_failures(errors: Path) -> Counter[str]:
    lines = errors.read_text().splitlines() if errors.exists() else []
    return Counter(line.split(": ", 2)[2] for line in lines if line.startswith(PUSH_FAILED))


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


# --- 1. throughput ----------------------------------------------------------------------------------------------


class RecordingClient:
    """The dispatcher's client, noting each write it makes so that the bare loop can send the same ones."""

    def __init__(self, client: AnimanaClient) -> None:
        self.client = client
        self.calls: list[tuple[str, tuple, dict]] = []

    def create(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create", args, kwargs))
        return self.client.create(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("update", args, kwargs))
        return self.client.update(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("delete", args, kwargs))
        return self.client.delete(*args, **kwargs)


def later(body: dict[str, Any]) -> dict[str, Any]:
    """The same appointment a year later: a free slot, so the bare loop's copy is not a double booking."""
    import datetime as dt

    out = dict(body)
    for key in ("start", "end"):
        if key in out:
            out[key] = (dt.datetime.fromisoformat(out[key]) + dt.timedelta(days=364)).isoformat()
    return out


def throughput(url: str, app_engine: Any, client: AnimanaClient, practice: LinkedPractice, pool: Pool, n: int, profile: bool, concurrency: int, rounds: int) -> tuple[float, float, int]:  # fmt: skip
    """Writes/s of the dispatcher and of the bare loop over ``rounds`` rounds of n / rounds writes, and the entries
    left undone."""
    sent = calls = left = 0
    dispatcher_s = bare_s = 0.0
    for round_ in range(rounds):
        size = n // rounds
        writes = range(round_ * size, (round_ + 1) * size)
        s, d_s, c, b_s, left = _throughput_round(
            url, app_engine, client, practice, pool, writes, profile, concurrency
        )
        sent, dispatcher_s, calls, bare_s = sent + s, dispatcher_s + d_s, calls + c, bare_s + b_s
    return sent / dispatcher_s, calls / bare_s, left


def _throughput_round(url: str, app_engine: Any, client: AnimanaClient, practice: LinkedPractice, pool: Pool, writes: range, profile: bool, concurrency: int) -> tuple[int, float, int, float, int]:  # fmt: skip
    """(entries sent, dispatcher seconds, bare calls, bare seconds, entries left) of one round."""
    rng, written = random.Random(writes.start), Written()
    for i in writes:
        if i < len(pool.clients):  # one update of each client, then creates: every entry its own row
            with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as s:
                s.execute(text("UPDATE client SET city = :v WHERE id = :id"),
                          {"v": f"{rng.choice(TOWNS)}-{i}", "id": pool.clients[i]})  # fmt: skip
        else:
            write_one(app_engine, pool, rng, written, kind="book" if i % 2 else "vaccinate")
    recording = RecordingClient(client)
    sender = Sender(recording)  # type: ignore[arg-type]
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        report = profiler.runcall(
            push, app_engine, client, practice, master_key=MASTER_KEY, sender=sender, concurrency=concurrency
        )
    else:
        report = push(
            app_engine, client, practice, master_key=MASTER_KEY, sender=sender, concurrency=concurrency
        )
    dispatcher_s = time.perf_counter() - started
    if profiler is not None:
        print("  where the dispatcher's time went (cProfile, cumulative; the profiler slows it too):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    left = outbox_count(url, ("pending", "held", "dead"), [practice.practice_id])
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as s:
        # The bare loop's updates are conditional too, on the version the dispatcher's write left.
        versions = {r[0]: r[1] for r in s.execute(text("SELECT animana_id, animana_version FROM client"))}

    def send_bare(call: tuple[str, tuple, dict]) -> None:
        method, args, kwargs = call
        kwargs = {**kwargs, "idempotency_key": str(uuid.uuid4()), "retry": ONE_ATTEMPT}
        if method == "create":
            client.create(args[0], args[1], later(args[2]), **kwargs)
        else:
            kwargs["if_match"] = versions[str(args[2])]
            client.update(*args[:3], args[3], **kwargs)

    started = time.perf_counter()
    # As many writes in flight as the dispatcher had: the ratio is the dispatcher's own cost over the same HTTP work.
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send_bare, recording.calls))
    bare_s = time.perf_counter() - started
    return report.sent, dispatcher_s, len(recording.calls), bare_s, left


# --- 2. lag at a steady rate ------------------------------------------------------------------------------------


def steady_writes(app_engine: Any, pools: list[Pool], rate: float, count: int, written: Written, stop: threading.Event) -> None:  # fmt: skip
    rng = random.Random(11)
    started = time.perf_counter()
    for i in range(count):
        if stop.is_set():
            return
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            write_one(app_engine, pools[i % len(pools)], rng, written)
        except DBAPIError as exc:  # rolled back, so nothing to write back; counted and shown (e.g. deadlocks)
            written.failed[type(exc.orig).__name__] += 1


def lags(url: str, since_id: int, practices: list[int]) -> list[float]:
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM sent_at - created_at) FROM writeback_outbox "
            "WHERE state = 'done' AND id > %s AND practice_id = ANY(%s)",
            (since_id, practices),
        ).fetchall()
    return [float(r[0]) for r in rows]


def claimable_pending(url: str, practices: list[int]) -> int:
    """Pending entries the dispatcher can send: not those behind an older open entry of their row — a later change
    of a row whose conflict waits for a decision waits with it (held), as per-record order demands."""
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute(
            """SELECT count(*) FROM writeback_outbox o WHERE o.state = 'pending' AND o.practice_id = ANY(%s)
                 AND NOT EXISTS (SELECT FROM writeback_outbox b WHERE b.practice_id = o.practice_id
                                    AND b.table_name = o.table_name AND b.row_id = o.row_id AND b.id < o.id
                                    AND b.state IN ('held', 'dead'))""",
            (practices,),
        ).fetchone()[0]  # type: ignore[index]


def wait_drained(url: str, practices: list[int], timeout: float, label: str) -> int:
    """Wait until no entry of the practices can still be sent; returns how many can at the timeout."""
    deadline, left = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        left = claimable_pending(url, practices)
        print(f"\r  {label}: {left} entries pending   ", end="", flush=True)
        if left == 0:
            break
        time.sleep(1)
    print()
    return left


# --- 3. faults --------------------------------------------------------------------------------------------------


def overlapping_edits(url: str, reader: AnimanaReader, animana_of: dict[int, int], want: int, rng: random.Random) -> list[tuple[int, str, int, str]]:  # fmt: skip
    """While the dispatcher is down: Animana users change the very field a still-unsent local update changed
    (checked over HTTP: Animana does not have the local value yet), to another value than both sides'."""
    made: list[tuple[int, str, int, str]] = []
    with psycopg.connect(libpq(url)) as conn:
        candidates = conn.execute(
            "SELECT o.practice_id, o.table_name, o.row_id, o.changes, coalesce(c.animana_id, a.animana_id) "
            "FROM writeback_outbox o "
            "LEFT JOIN client c ON o.table_name = 'client' AND c.practice_id = o.practice_id AND c.id = o.row_id "
            "LEFT JOIN appointment a ON o.table_name = 'appointment' AND a.practice_id = o.practice_id "
            "AND a.id = o.row_id WHERE o.state = 'pending' AND o.operation = 'update' "
            "AND o.practice_id = ANY(%s) AND o.changes ?| array['city', 'last_name', 'reason'] "
            "AND coalesce(c.animana_id, a.animana_id) IS NOT NULL ORDER BY random() LIMIT 20",
            (list(animana_of),),
        ).fetchall()
    for pid, table, row_id, changes, animana_id in candidates:
        if len(made) >= want:
            break
        column = next(c for c in EDITABLE[table] if c in changes)
        try:
            record = reader.get(animana_of[pid], RESOURCE_OF[table], animana_id)
        except httpx.HTTPError:  # a 5xx or 429 of the faults: another candidate
            continue
        if record is None or record.get(column) == changes[column]:
            continue  # the local change reached Animana before the kill: an edit now would not overlap
        choices = {
            "city": TOWNS,
            "last_name": SURNAMES,
            "reason": ("telefonisch verzet", "spoed", "nacontrole"),
        }
        value = rng.choice([v for v in choices[column] if v not in (changes[column], record.get(column))])
        response = httpx.post(f"{reader.http.base_url}/_sim/edit", timeout=30, json={
            "practice": animana_of[pid], "resource": RESOURCE_OF[table], "id": int(animana_id),
            "fields": {column: value}})  # fmt: skip
        if response.status_code == 200:
            made.append((pid, table, row_id, column))
    return made


def sim_stats(base: str) -> dict[str, int]:
    return {k: v for k, v in httpx.get(f"{base}/_sim/stats", timeout=10).json().items() if isinstance(v, int)}


def injected(stats: dict[str, int], before: dict[str, int], kills: int) -> dict[str, int]:
    """The faults the targets count, since `before`: the simulator's own statistics and the bench's kills."""
    delta = {name: stats[name] - before.get(name, 0) for name in stats}
    return {"5xx": delta["error_500"] + delta["error_503"], "429": delta["rate_limited"],
            "lost answers": delta["response_lost"], "SIGKILL": kills}  # fmt: skip


def write_attempts(base: str) -> int:
    """Write requests the simulator answered in any way (applied, replayed, refused, 412, 429, 5xx)."""
    stats = sim_stats(base)
    return sum(stats[k] for k in ("writes", "idempotent_replays", "precondition_failed", "refused",
                                  "rate_limited", "error_500", "error_503"))  # fmt: skip


def wait_sending(base: str, since: int, timeout: float = 30.0) -> None:
    """Until the (re)started dispatcher has sent something: its start-up (imports, engine, token) is not a kill
    window, so each SIGKILL lands while it works."""
    deadline = time.monotonic() + timeout
    while write_attempts(base) == since and time.monotonic() < deadline:
        time.sleep(0.05)


def fault_phase(url: str, base: str, app_engine: Any, pools: list[Pool], practices: list[LinkedPractice], args: argparse.Namespace, written: Written) -> dict[str, Any]:  # fmt: skip
    """Writes at --fault-rate with faults on, the dispatcher killed (once it sends) and restarted, overlapping
    Animana edits made in the kill windows — until --writes writes, --kills kills and --edits edits are made and
    each fault kind reached --min-faults. Then faults off, drain, sync + settle. Returns the counts the table
    shows."""
    codes, ids = [p.code for p in practices], [p.practice_id for p in practices]
    animana_of = {p.practice_id: p.animana_id for p in practices}
    reader, rng = AnimanaReader(base, "vetconnect-sim", SECRET), random.Random(13)
    watcher = EditWatcher(AnimanaReader(base, "vetconnect-sim", SECRET), [animana_of[pid] for pid in ids])
    watcher.start()
    before = sim_stats(base)
    configure(base, FAULTS)
    stop = threading.Event()
    writer = threading.Thread(target=steady_writes, args=(app_engine, pools, args.fault_rate, 10**9, written, stop),
                              daemon=True)  # fmt: skip
    start_total = written.total
    writer.start()
    kills, busy_kills, edits = 0, 0, []
    dispatcher = start_dispatcher(url, base, codes, args.errors)
    started = time.perf_counter()
    while True:
        wait_sending(base, write_attempts(base))
        time.sleep(rng.uniform(0.3, 1.5))
        busy_kills += outbox_count(url, ("pending",), ids) > 0
        kill(dispatcher)
        kills += 1
        if len(edits) < args.edits:
            edits += overlapping_edits(url, reader, animana_of, min(6, args.edits - len(edits)), rng)
        dispatcher = start_dispatcher(url, base, codes, args.errors)
        counts = injected(sim_stats(base), before, kills)
        print(f"\r  faults: {written.total - start_total} writes, {len(edits)} overlapping edits, "
              f"{', '.join(f'{k} {v}' for k, v in counts.items())}, {time.perf_counter() - started:,.0f} s   ",
              end="", flush=True)  # fmt: skip
        if (written.total - start_total >= args.writes and kills >= args.kills and len(edits) >= args.edits
                and min(counts.values()) >= args.min_faults):  # fmt: skip
            break
    stop.set()
    writer.join()
    print()
    stats = {name: v - before.get(name, 0) for name, v in sim_stats(base).items()}
    counts = injected(sim_stats(base), before, kills)
    configure(base, NO_FAULTS)
    pending = wait_drained(url, ids, args.drain_timeout, "draining with faults off")
    kill(dispatcher)
    # Quiescence: what the drain's 412s settled may have re-queued (sent after STALE_WAIT_S); bring in the
    # concurrent editor's edits, settle, push, until nothing is pending or the drain time is used up.
    client = animana_client(base)
    deadline = time.monotonic() + args.drain_timeout
    for practice in practices:
        sync_practice(app_engine, client, practice, master_key=MASTER_KEY)
    while outbox_count(url, ("pending",), ids) and time.monotonic() < deadline:
        for practice in practices:
            push_noting_failure(app_engine, client, practice)
        time.sleep(1)
    for practice in practices:
        sync_practice(app_engine, client, practice, master_key=MASTER_KEY)
    client.close()
    watcher.stop.set()
    watcher.join()
    watcher.poll()  # the concurrent editor's edits of the drain, too
    seen = {pid: watcher.seen[animana_of[pid]] for pid in ids}
    return {"kills": kills, "busy_kills": busy_kills, "own_edits": len(edits), "stats": stats, "counts": counts,
            "pending_after_drain": pending, "seen_edits": seen, "seconds": time.perf_counter() - started}  # fmt: skip


# --- the run ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1000, help="local writes of the fault phase")
    parser.add_argument("--fault-rate", type=float, default=12.0, help="writes/s during the fault phase")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs of the dispatcher (at least)")
    parser.add_argument("--edits", type=int, default=100, help="overlapping Animana edits to make")
    parser.add_argument("--min-faults", type=int, default=50,
                        help="faults stay on until each kind (5xx, 429, lost answer, SIGKILL) reached this")  # fmt: skip
    parser.add_argument("--lag-seconds", type=float, default=30.0, help="length of the 20 writes/s lag phase")
    parser.add_argument("--lag-rate", type=float, default=20.0)
    parser.add_argument("--throughput-writes", type=int, default=600)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--drain-timeout", type=float, default=150.0)
    parser.add_argument("--sync-practices", type=int, default=4)
    parser.add_argument("--sync-scale", default="medium")
    parser.add_argument("--sync-rounds", type=int, default=5, help="rounds of each arm (alternating)")
    parser.add_argument("--sync-edits", type=int, default=300, help="Animana edits per practice per round")
    parser.add_argument("--profile-push", action="store_true", help="cProfile the dispatcher of phase 1")
    parser.add_argument("--profile-settle", action="store_true", help="cProfile the settlements of phase 4")
    parser.add_argument("--skip-sync", action="store_true", help="skip the sync-overhead phase")
    parser.add_argument("--only", choices=("throughput", "sync"),
                        help="run this phase alone (its figures only; a change's effect on one ratio)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--dispatch", nargs="+", help=argparse.SUPPRESS)  # the dispatcher subprocess
    args = parser.parse_args()
    if args.dispatch:
        dispatch_forever(args.dispatch[0], args.dispatch[1], args.dispatch[2:])
        return
    workdir = Path(tempfile.mkdtemp(prefix="vetconnect-bench-wb-"))
    args.errors = workdir / "dispatcher-errors.log"
    server = pgserver.start(workdir / "pgdata").url(database="postgres")
    sim = start_simulator(7, "small", args.port)
    base = f"http://127.0.0.1:{args.port}"
    dispatcher: subprocess.Popen | None = None
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)", flush=True)
        if args.only == "sync":  # its own simulator and warehouses
            print(
                f"4. sync overhead: {args.sync_practices} {args.sync_scale} practices, two warehouses",
                flush=True,
            )
            print_rows([sync_row(sync_overhead(server, args, animana_client, prepare_practices))])
            return
        url = new_database(server)
        link_practices(url, 7)
        prepare_practices(url)
        app_engine = make_engine(app_url(url))
        practices = linked_practices(make_engine(url))
        with animana_client(base) as client:
            for practice in practices:
                sync_practice(app_engine, client, practice, master_key=MASTER_KEY, full=True)
            pools = load_pools(app_engine, [p.practice_id for p in practices])
            if args.only != "sync":
                print("1. throughput", flush=True)
                rates = throughput(url, app_engine, client, practices[5], pools[5], args.throughput_writes,
                                   args.profile_push, CONCURRENCY, args.throughput_rounds)  # fmt: skip
                one_at_a_time = throughput(url, app_engine, client, practices[6], pools[6],
                                           args.throughput_writes, False, 1, args.throughput_rounds)  # fmt: skip
        if args.only == "throughput":
            print_rows(throughput_rows((rates, one_at_a_time)))
            return
        five, five_pools, ids = practices[:5], pools[:5], [p.practice_id for p in practices[:5]]
        reader = AnimanaReader(base, "vetconnect-sim", SECRET)
        max_before = {p.practice_id: reader.max_ids(p.animana_id) for p in five}
        written = Written()
        print(f"2. lag at {args.lag_rate:g} writes/s for {args.lag_seconds:g} s", flush=True)
        dispatcher = start_dispatcher(url, base, [p.code for p in five], args.errors)
        # One write taken through first: the lag measured is the running dispatcher's, not its start-up's.
        write_one(app_engine, five_pools[0], random.Random(5), written, kind="client city")
        wait_drained(url, ids, 60, "dispatcher starting")
        since = max_outbox_id(url)
        steady_writes(
            app_engine,
            five_pools,
            args.lag_rate,
            int(args.lag_rate * args.lag_seconds),
            written,
            threading.Event(),
        )
        wait_drained(url, ids, 60, "lag phase")
        kill(dispatcher)
        dispatcher = None
        lag = lags(url, since, ids)
        lag_writes = written.total
        print(
            f"3. faults: {args.writes} writes, >= {args.kills} dispatcher kills, {args.edits} overlapping edits",
            flush=True,
        )
        faults = fault_phase(url, base, app_engine, five_pools, five, args, written)
        animana_ids = {p.practice_id: p.animana_id for p in five}
        verdict = reckon(app_engine, reader, animana_ids, written, max_before, faults["seen_edits"])
        reader.close()
        sync = None
        if not args.skip_sync:
            print(
                f"4. sync overhead: {args.sync_practices} {args.sync_scale} practices, two warehouses",
                flush=True,
            )
            sync = sync_overhead(server, args, animana_client, prepare_practices)
            print(f"  (first full sync: {sync.full_s:,.1f} s)")
        report(args, (rates, one_at_a_time), lag, lag_writes, written, faults, verdict, sync)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        if dispatcher is not None:
            kill(dispatcher)
        sim.terminate()
        sim.wait(timeout=10)
        pgserver.stop(workdir / "pgdata")
        shutil.rmtree(workdir, ignore_errors=True)


def report(args: argparse.Namespace, throughput: tuple[tuple[float, float, int], tuple[float, float, int]], lag: list[float], lag_writes: int, written: Written, faults: dict[str, Any], verdict: Reckoning, sync: SyncTimes | None) -> None:  # fmt: skip
    stats, counts = faults["stats"], faults["counts"]
    print(f"\nlocal writes: {written.total:,} ({lag_writes:,} in the lag phase) over 5 practices, "
          f"{len(written.rows):,} rows, {verdict.fields:,} (row, field) last values: {dict(written.kinds)}; "
          f"refused by the database (rolled back): {dict(written.failed) or 0}")  # fmt: skip
    print(f"fault phase: {faults['seconds']:,.0f} s; faults injected: {counts} (SIGKILL {faults['busy_kills']} "
          f"with entries pending); concurrent editor's edits {stats['concurrent_edits']}; idempotent replays "
          f"{stats['idempotent_replays']}; 412 {stats['precondition_failed']}; Animana-side edits seen "
          f"{dict(verdict.edits)} ({faults['own_edits']} made by the bench as overlapping)")  # fmt: skip
    failures = push_failures(args.errors)
    print(f"dispatcher pushes that failed (the practice's batch rolled back; the process went on with the other "
          f"practices): {sum(failures.values())}: {dict(failures.most_common(3))}")  # fmt: skip
    if verdict.lost:
        print("LOST (first 10):\n  " + "\n  ".join(verdict.lost[:10]))
    matched = verdict.overlapping & verdict.detected
    missed, extra = verdict.overlapping - verdict.detected, verdict.detected - verdict.overlapping
    unexplained = extra - verdict.late_local - verdict.echoes
    print(f"overlapping (row, field): {len(verdict.overlapping)}, detected conflict fields: "
          f"{len(verdict.detected)}, both: {len(matched)}; overlapping not detected: {sorted(missed)[:10]}; "
          f"detected not overlapping: {len(extra)}, of which the local change came after Animana's edit but before "
          f"the sync brought it in: {len(extra & verdict.late_local)}, Animana's value being our own write come back "
          f"(applied, its answer not yet recorded): {len(extra & verdict.echoes)}; others: "
          f"{sorted(unexplained)[:10]}; own creates imported meanwhile and merged back: {verdict.own_copies}; "
          f"overlapping but agreed (staff wrote Animana's value here too before the sync): {len(verdict.agreed)}; "
          f"overlapping but converged (Animana's last edit put the field back at the agreed value or at ours before "
          f"a sync saw it): {len(verdict.converged)} {sorted(verdict.converged)[:5]}")  # fmt: skip
    print(f"dead letters by reason: {dict(verdict.dead_reasons)}")
    for key, story in verdict.dead_stories.items():
        print(f"  dead letter {key}:\n    " + "\n    ".join(story))
    for key in [*sorted(missed)[:4], *sorted(extra - verdict.late_local)[:4], *sorted(verdict.converged)[:2]]:
        print(f"  {key}:\n    " + "\n    ".join(verdict.story.get(key, ["no Animana edit seen"])))
    explained = (f"{verdict.in_animana} in Animana, {verdict.in_conflict_open} in an open conflict, "
                 f"{verdict.in_conflict_decided} in a decided conflict (both values kept), "
                 f"{verdict.overwritten_in_animana} changed later by an Animana user, {verdict.held_behind_conflict} "
                 f"held behind an open conflict, {verdict.dead_letters} dead "
                 f"letters with reason ({verdict.dead_without_reason} without), {verdict.still_pending} still pending")  # fmt: skip
    rows = [
        ("lost (row, field)", f"{len(verdict.lost)}", "0", len(verdict.lost) == 0, explained),
        ("duplicated", f"{verdict.duplicates + verdict.shared_ids}", "0", verdict.duplicates + verdict.shared_ids == 0,
         f"{verdict.animana_creates} Animana creates for {verdict.local_inserts} inserted rows; "
         f"{verdict.shared_ids} Animana ids shared by two rows"),
        ("overlapping edits without a conflict", f"{len(missed)} of {len(verdict.overlapping)}", "0", not missed,
         f"{len(missed & verdict.coincident)} of them: Animana's user typed the value of a write of ours whose "
         "outcome was unknown; conflicts: " f"{dict(verdict.conflicts)}; rules: {dict(verdict.rules)}"),
        ("conflicts no overlapping edit explains", f"{len(unexplained)}", "0", not unexplained,
         f"{len(verdict.detected)} conflict fields, {len(matched)} overlapping edits, {len(extra & verdict.late_local)}"
         f" local changes after Animana's before the sync, {len(extra & verdict.echoes)} our own write come back"),
        *[(f"faults: {kind}", f"{n}", f">= {args.min_faults}", n >= args.min_faults, "") for kind, n in counts.items()],
        ("lag commit → Animana p95", f"{percentile(lag, 0.95):,.2f} s" if lag else "-", "< 5 s",
         bool(lag) and percentile(lag, 0.95) < 5, f"p50 {percentile(lag, 0.5):,.2f} s; {len(lag)} entries at "
         f"{args.lag_rate:g} writes/s" if lag else ""),
        *throughput_rows(throughput),
    ]  # fmt: skip
    if sync is not None:
        rows.append(sync_row(sync))
    print_rows(rows)


Figure = tuple[str, str, str, bool, str]  # name, value, target, met, detail


def throughput_rows(throughput: tuple[tuple[float, float, int], tuple[float, float, int]]) -> list[Figure]:
    (disp_rate, bare_rate, left), (single_rate, single_bare_rate, single_left) = throughput
    return [
        ("dispatcher ÷ bare loop", f"{disp_rate / bare_rate:.2f}x", ">= 0.8x", disp_rate / bare_rate >= 0.8,
         f"{disp_rate:,.0f} vs {bare_rate:,.0f} writes/s, {CONCURRENCY} in flight in both ({left} not done)"),
        ("  one at a time ÷ bare one at a time", f"{single_rate / single_bare_rate:.2f}x", "-", True,
         f"{single_rate:,.0f} vs {single_bare_rate:,.0f} writes/s: the dispatcher's own overhead ({single_left} "
         "not done)"),
    ]  # fmt: skip


def sync_row(sync: SyncTimes) -> Figure:
    return ("incremental sync with ÷ without", f"{sync.ratio():.2f}x", "<= 1.1x", sync.ratio() <= 1.1,
            f"medians {statistics.median(sync.with_s):,.2f} s vs {statistics.median(sync.without_s):,.2f} s "
            f"over {len(sync.with_s)} rounds; without the settlement {sync.ratio_without_settle():.2f}x "
            f"(settle {statistics.median(sync.settle_s):,.2f} s, held rows {sync.held_rows})")  # fmt: skip


def print_rows(rows: list[Figure]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':>12}  {'target':>8}  met  detail")
    for name, value, target, met, detail in rows:
        print(f"{name:<{width}}  {value:>12}  {target:>8}  {'yes' if met else 'NO ':<3}  {detail}")


if __name__ == "__main__":
    main()
