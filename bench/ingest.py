"""Animana ingest benchmark (not a test; prints figures).

    .venv/bin/python bench/ingest.py --practices 20 --scale medium

1. The simulator runs in its own process (no faults) so it does not share our GIL.
2. End to end: `vetconnect sync animana --all --workers N` as a subprocess into a fresh migrated database:
   rows/s and peak RSS, summed over the sync process and its worker processes (sampled every 0.25 s).
3. Physical baseline, same run: the rows the sync produced, read into memory (binary COPY TO), then COPYed
   straight into the same tables of a second fresh database — no HTTP, no parsing, no joins — with the load
   transaction's settings (`warehouse.ingest.animana.load.LOAD_SETTINGS`), so the baseline gets every database-side
   advantage the loader has.
4. The peer: dlt's `rest_api` source (OAuth2 client credentials, cursor paginator) loading the same simulator
   into the same PostgreSQL (``pip install "dlt[postgres]"`` into the venv for the bench only).

5. The floor set by the simulator: every page of every practice fetched (bytes only, no parsing, no
   database) with the sync's concurrency. The simulator's CPU seconds are printed for each arm: on a 2-core
   machine it competes with the contenders for the same cores.

Targets: sync >= 50 % of raw COPY, >= 3x dlt, peak memory < 1 GB.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import psycopg
from sqlalchemy.engine import make_url

from connectors.animana.resources.registry import RESOURCE_ORDER
from vetconnect import pgserver
from warehouse.ingest.animana.load import LOAD_SETTINGS
from warehouse.kernel.db import make_engine
from warehouse.kernel.tenancy import system_session
from warehouse.migrations import runner as migrate
from warehouse.tenants.admin import add_franchise, add_practice

ROOT = Path(__file__).resolve().parents[1]
MASTER_KEY = bytes(range(32))
SECRET = "bench-secret-0123456789"
RESOURCES = RESOURCE_ORDER  # what the sync reads: every resource spec
# Tables the sync writes, in an order that satisfies the foreign keys (for the raw COPY baseline).
TABLES = (
    "resource", "staff_shift", "product", "product_price_override", "client", "patient", "client_patient",
    "appointment", "visit", "diagnosis", "weight_measurement", "vaccination", "reminder", "prescription",
    "lab_observation", "invoice", "invoice_line", "payment", "ingest_quarantine",
)  # fmt: skip


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def new_database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def link_practices(url: str, n: int) -> None:
    engine = make_engine(url)
    with system_session(engine, reason="bench set-up") as session:
        franchise = add_franchise(session, code="bench", name="Bench")
        for i in range(n):
            add_practice(session, franchise_id=franchise.id, code=f"bench-{1001 + i}", name=f"Bench {1001 + i}",
                         master_key=MASTER_KEY, animana_practice_id=str(1001 + i))  # fmt: skip
    engine.dispose()


def start_simulator(n: int, scale: str, port: int) -> subprocess.Popen:
    code = (
        "from connectors.animana.simulator.app import SimulatorConfig\n"
        "from connectors.animana.simulator.server import serve\n"
        f"serve(SimulatorConfig(seed=42, practices={n}, scale={scale!r}, client_secret={SECRET!r}, "
        f"cache_practices={n}), port=" + str(port) + ")\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/oauth/token", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def api_totals(base: str, n: int) -> int:
    token = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "vetconnect-sim", "client_secret": SECRET},
    ).json()["access_token"]
    total = 0
    for pid in range(1001, 1001 + n):
        counts = httpx.get(f"{base}/v1/practices/{pid}/counts", headers={"Authorization": f"Bearer {token}"},
                           timeout=600).json()["counts"]  # fmt: skip
        total += sum(counts.values())
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_floor(base: str, n: int, workers: int) -> tuple[float, int]:
    """Every page of every practice and resource, bytes only, `workers` practices at a time: the time the
    simulator needs to serve what the sync reads."""
    from concurrent.futures import ThreadPoolExecutor

    token = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "vetconnect-sim", "client_secret": SECRET},
    ).json()["access_token"]

    def practice(pid: int) -> int:
        size = 0
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
            for resource in RESOURCES:
                cursor = None
                while True:
                    params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                    response = http.get(f"/v1/practices/{pid}/{resource}", params=params)
                    size += len(response.content)
                    # the cursor is the body's last field: no need to parse the page to find it
                    tail = response.content[-300:].decode()
                    cursor = (
                        None
                        if tail.endswith('"next_cursor":null}')
                        else tail.rsplit('"next_cursor":"', 1)[1][:-2]
                    )
                    if cursor is None:
                        break
        return size

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        size = sum(pool.map(practice, range(1001, 1001 + n)))
    return time.perf_counter() - started, size


def run_sync(url: str, base: str, workers: int) -> tuple[float, TreeMemory]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
        "VETCONNECT_ANIMANA_URL": base,
        "VETCONNECT_ANIMANA_CLIENT_ID": "vetconnect-sim",
        "VETCONNECT_ANIMANA_CLIENT_SECRET": SECRET,
        "COLUMNS": "120",
    }
    started = time.perf_counter()
    sync = subprocess.Popen([sys.executable, "-m", "vetconnect.cli", "sync", "animana", "--all", "--workers",
                             str(workers)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    peak = TreeMemory(sync.pid)
    while sync.poll() is None:
        peak.sample()
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    if sync.returncode:
        raise subprocess.CalledProcessError(sync.returncode, sync.args)
    return elapsed, peak


class TreeMemory:
    """Peak resident memory of a process and all its descendants (the sync's worker processes) summed at each
    sample (every 0.25 s), next to the largest single process (`ru_maxrss` of the children, exact but per process:
    with worker processes it alone would under-report)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_sum_mb = 0.0
        self.processes = 0

    def sample(self) -> None:
        total, count = 0, 0
        try:
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                    count += 1
                except psutil.NoSuchProcess:
                    continue
        except psutil.NoSuchProcess:
            return
        if total / 2**20 > self.peak_sum_mb:
            self.peak_sum_mb, self.processes = total / 2**20, count

    @property
    def peak_single_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def count_rows(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES)  # type: ignore[index]


def raw_copy(source: str, target: str) -> tuple[float, int]:
    """Rows of the synced database, in memory per table, COPYed into the same tables of `target`."""
    total_seconds, rows = 0.0, 0
    with psycopg.connect(libpq(source)) as src, psycopg.connect(libpq(target)) as dst:
        for table in TABLES:
            cols = [r[0] for r in src.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND "
                "is_generated = 'NEVER' ORDER BY ordinal_position", (table,)).fetchall()]  # fmt: skip
            collist = ", ".join(f'"{c}"' for c in cols)
            chunks: list[bytes] = []
            with src.cursor().copy(
                f'COPY (SELECT {collist} FROM "{table}") TO STDOUT (FORMAT binary)'
            ) as copy:
                chunks.extend(bytes(b) for b in copy)
            n = src.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
            started = time.perf_counter()
            dst.execute(LOAD_SETTINGS)
            with dst.cursor().copy(f'COPY "{table}" ({collist}) FROM STDIN (FORMAT binary)') as copy:
                for chunk in chunks:
                    copy.write(chunk)
            dst.commit()
            total_seconds += time.perf_counter() - started
            rows += n
    return total_seconds, rows


def run_dlt(url: str, base: str, n: int) -> tuple[float, int] | None:
    try:
        import dlt
        from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
        from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
        from dlt.sources.rest_api import rest_api_source
    except ImportError:
        return None
    resources = [
        {"name": f"{r}_{pid}", "endpoint": {"path": f"v1/practices/{pid}/{r}", "params": {"limit": 500},
                                           "data_selector": "data"}, "write_disposition": "append"}
        for pid in range(1001, 1001 + n)
        for r in RESOURCES
    ]  # fmt: skip
    source = rest_api_source(
        {
            "client": {
                "base_url": base + "/",
                "auth": OAuth2ClientCredentials(
                    access_token_url=f"{base}/oauth/token",
                    client_id="vetconnect-sim",
                    client_secret=SECRET,
                    access_token_request_data={"grant_type": "client_credentials"},
                ),  # fmt: skip
                "paginator": JSONResponseCursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
            },
            "resources": resources,
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{uuid.uuid4().hex[:6]}",
        destination=dlt.destinations.postgres(credentials=libpq(url)),
        dataset_name="dlt_animana",
        pipelines_dir=tempfile.mkdtemp(prefix="dlt-bench-"),
    )
    started = time.perf_counter()
    try:
        info = pipeline.run(source)
    finally:
        elapsed = time.perf_counter() - started
        shutil.rmtree(pipeline.pipelines_dir, ignore_errors=True)
    with psycopg.connect(libpq(url)) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dlt_animana' "
            "AND table_name NOT LIKE '\\_dlt%%'"
        ).fetchall()
        rows = sum(conn.execute(f'SELECT count(*) FROM dlt_animana."{t[0]}"').fetchone()[0] for t in tables)  # type: ignore[index]
    del info
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, default=20)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument(
        "--pg-port", type=int, default=54329, help="TCP port of the bench server (dlt needs TCP)"
    )
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="practices the sync loads at once")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vetconnect-bench-"))
    info = pgserver.start(workdir / "pgdata", tcp_port=args.pg_port)
    server = info.url(database="postgres")
    sim = start_simulator(args.practices, args.scale, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        # Asking every practice's totals generates them all once (the simulator keeps every practice), so
        # generation is billed to none of the three contenders.
        records = api_totals(base, args.practices)
        print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        print(f"simulator: {args.practices} practices at {args.scale}: {records:,} live API records")
        sync_db = new_database(server)
        link_practices(sync_db, args.practices)
        sim_cpu = cpu_seconds(sim.pid)
        elapsed, memory = run_sync(sync_db, base, args.workers)
        sim_cpu = cpu_seconds(sim.pid) - sim_cpu
        written = count_rows(sync_db)
        print(f"vetconnect sync animana --all --workers {args.workers}: {elapsed:,.1f} s, {records / elapsed:,.0f} "
              f"records/s ({written:,} warehouse rows, {written / elapsed:,.0f} rows/s), peak RSS "
              f"{memory.peak_sum_mb:,.0f} MB summed over {memory.processes} processes (largest single process "
              f"{memory.peak_single_mb:,.0f} MB); simulator CPU {sim_cpu:,.1f} s")  # fmt: skip
        copy_db = new_database(server)
        link_practices(copy_db, args.practices)
        copy_seconds, copy_rows = raw_copy(sync_db, copy_db)
        print(f"raw COPY of the same rows (in memory, same tables): {copy_seconds:,.1f} s, "
              f"{copy_rows / copy_seconds:,.0f} rows/s")  # fmt: skip
        print(f"sync / raw COPY = {(written / elapsed) / (copy_rows / copy_seconds):.0%}  (target >= 50 %)")
        if not args.skip_dlt:
            dlt_db = new_database(server)
            # trust auth ignores the password, but dlt insists on one
            tcp = make_url(dlt_db).set(host="127.0.0.1", port=args.pg_port, query={}, password="bench")
            sim_cpu = cpu_seconds(sim.pid)
            result = run_dlt(tcp.render_as_string(hide_password=False), base, args.practices)
            sim_cpu = cpu_seconds(sim.pid) - sim_cpu
            if result is None:
                print('dlt not installed: .venv/bin/uv pip install --python .venv/bin/python "dlt[postgres]"')
            else:
                dlt_seconds, dlt_rows = result
                print(f"dlt rest_api -> postgres: {dlt_seconds:,.1f} s, {records / dlt_seconds:,.0f} records/s "
                      f"({dlt_rows:,} rows incl. child tables, {dlt_rows / dlt_seconds:,.0f} rows/s); "
                      f"simulator CPU {sim_cpu:,.1f} s")  # fmt: skip
                print(f"sync / dlt = {dlt_seconds / elapsed:.1f}x  (target >= 3x)")
                print(f"3x dlt needs the sync in {dlt_seconds / 3:,.1f} s = {written / (dlt_seconds / 3):,.0f} rows/s "
                      f"(raw COPY alone takes {copy_seconds:,.1f} s)")  # fmt: skip
        sim_cpu = cpu_seconds(sim.pid)
        floor_seconds, floor_bytes = fetch_floor(base, args.practices, args.workers)
        sim_cpu = cpu_seconds(sim.pid) - sim_cpu
        print(f"simulator floor (every page fetched, bytes only, {args.workers} at a time): {floor_seconds:,.1f} s, "
              f"{floor_bytes / 1e6:,.0f} MB, {records / floor_seconds:,.0f} records/s; simulator CPU {sim_cpu:,.1f} s")  # fmt: skip
        print(
            f"peak memory of the sync, all its processes together: {memory.peak_sum_mb:,.0f} MB (target < 1024 MB)"
        )
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        pgserver.stop(workdir / "pgdata")
        # Three databases of a 20-practice run take ~7 GB: never leave them behind (a full disk stops everyone).
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
