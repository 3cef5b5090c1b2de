"""Device ingestion benchmark: MLLP throughput with ACKs, end-to-end latency, peak memory, and baselines.

    .venv/bin/python bench/devices.py [--messages 5000] [--senders 10] [--obx 20] [--burst 100000]

- A throw-away embedded PostgreSQL (or DATABASE_URL) migrated to head, one practice with one patient.
- The MLLP server (``hl7_handler`` + ``DeviceStore``, i.e. production code) runs in this process; the senders
  run in a separate process so they do not compete for this process's GIL.
- Each sender sends one message, waits for its ACK, sends the next (as analysers do). An AA is written after
  the commit, so send → ACK is send → observations visible in the database; a sample of messages is also
  checked in the database right after its ACK to confirm it.
- Baselines in the same run: (a) the raw INSERT of the same bytes into device_message from 10 threads without
  parsing or loading, (b) parse + map only (``process_bytes`` + ``to_device_outcome``), single thread.
- After the warm-up the database is ANALYZEd once (``analyse_after_warm_up``): the measured run starts with the
  planner statistics a database in use has. ``--fresh-statistics`` measures a brand-new database instead (its
  first minute, before autovacuum's first look).
- Peak RSS of this process (server side) is sampled every 50 ms.
- ``--burst N`` (0: skip) then sends N more messages with every sender streaming its share without waiting
  for ACKs (ACKs are read as they come): the listener is fed faster than it can store, and its RSS must stay
  flat - per connection it handles one message at a time, so TCP flow control holds the rest back. RSS is
  reported at each quarter of the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.devices.ingest import DeviceStore, to_device_outcome  # noqa: E402
from connectors.devices.mllp import (  # noqa: E402
    END_BLOCK,
    START_BLOCK,
    MLLPClient,
    freeze_startup_heap,
    hl7_handler,
    start_in_background,
)
from connectors.devices.outcome import process_bytes  # noqa: E402
from vetconnect import pgserver  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import system_session  # noqa: E402
from warehouse.migrations import runner as migrate
from warehouse.schema.clients import Client, ClientPatient, Patient  # noqa: E402
from warehouse.tenants.admin import add_franchise, add_practice  # noqa: E402

CHIP = "528140000123456"
MASTER_KEY = os.urandom(32)


def cbc(control_id: str, obx: int) -> bytes:
    segments = [
        f"MSH|^~\\&|VetScan HM5|Bench Lab|VetConnect|P1|20240314101500+0100||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{CHIP}^^^ISO^MC||de Vries^Bello||20190301|M",
        "NK1|1|de Vries^Anna|OWN",
        f"ORC|RE|PL-{control_id}|ACC-{control_id}",
        f"OBR|1|PL-{control_id}|ACC-{control_id}|CBC^Complete blood count^L|||20240314100000+0100",
    ]
    segments += [
        f"OBX|{n}|NM|T{n:02d}^Test {n}^L||{n}.{n % 10}|10*9/L|1.0-{n + 10}.0|{'H' if n % 7 == 0 else 'N'}|||F"
        for n in range(1, obx + 1)
    ]
    return "\r".join(segments).encode()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def setup_database(root: Path) -> str:
    external = os.environ.get("DATABASE_URL")
    base = external or pgserver.start(root / "pgdata").url(database="postgres")
    name = f"vc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}" if "?" not in base else base.replace("/postgres?", f"/{name}?")
    migrate.upgrade(url)
    return url


def analyse_after_warm_up(admin_url: str) -> None:
    """Give the planner the statistics a database in use has: one ANALYZE after the warm-up.

    Why: every lab_observation row runs two foreign-key checks (patient, lab_order), each a cached plan of
    ``SELECT 1 FROM lab_order WHERE practice_id = $1 AND id = $2``. On a never-analysed lab_order the planner
    scans the practice's orders (a sequential scan, or the ``(practice_id, animana_id)`` index with ``id`` as a
    filter) for every row: 108 µs a row at 2,000 orders. A database in use has been analysed by autovacuum;
    a run of a few seconds never sees autovacuum's first look. As lab_order grows during the run, the device
    connection re-plans once a second (``warehouse.ingest.devices.raw.REPLAN_SECONDS``), so a plan made at the
    warm-up's size does not stay: without that, the same run measured 279 msg/s.
    """
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def setup_practice(admin_url: str) -> int:
    engine = make_engine(admin_url)
    with system_session(engine, reason="bench set-up") as session:
        franchise = add_franchise(session, code="bench-f", name="Bench")
        practice = add_practice(
            session, franchise_id=franchise.id, code="bench", name="Bench", master_key=MASTER_KEY
        )
        client = Client(practice_id=practice.id, last_name="de Vries")
        patient = Patient(practice_id=practice.id, name="Bello", species="dog", microchip=CHIP)
        session.add_all([client, patient])
        session.flush()
        session.add(ClientPatient(practice_id=practice.id, client_id=client.id, patient_id=patient.id))
        practice_id = practice.id
    engine.dispose()
    return practice_id


# --- senders (separate process) ----------------------------------------------------------------------------


def _sender_process(
    port: int, senders: int, per_sender: int, obx: int, prefix: str, pipelined: bool, queue: mp.Queue
) -> None:
    async def one(n: int) -> list[tuple[float, float, bool]]:
        samples = []
        async with await MLLPClient.connect("127.0.0.1", port, timeout=60) as client:
            for i in range(per_sender):
                message = cbc(f"{prefix}{n}-{i}", obx)
                start = time.perf_counter()
                ack = await client.send(message)
                samples.append((start, time.perf_counter(), b"MSA|AA" in ack))
        return samples

    async def streaming(n: int) -> list[tuple[float, float, bool]]:
        # Writes as fast as the listener's TCP window lets it; ACKs come back in order on the same connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent_at: collections.deque[float] = collections.deque()
        samples: list[tuple[float, float, bool]] = []

        async def send_all() -> None:
            for i in range(per_sender):
                sent_at.append(time.perf_counter())
                writer.write(START_BLOCK + cbc(f"{prefix}{n}-{i}", obx) + END_BLOCK)
                await writer.drain()

        async def read_all() -> None:
            for _ in range(per_sender):
                ack = await asyncio.wait_for(reader.readuntil(END_BLOCK), 120)
                samples.append((sent_at.popleft(), time.perf_counter(), b"MSA|AA" in ack))

        await asyncio.gather(send_all(), read_all())
        writer.close()
        return samples

    async def main() -> list[tuple[float, float, bool]]:
        results = await asyncio.gather(*((streaming if pipelined else one)(n) for n in range(senders)))
        return [s for r in results for s in r]

    wall, cpu = time.perf_counter(), time.process_time()
    samples = asyncio.run(main())
    queue.put((time.perf_counter() - wall, time.process_time() - cpu))
    queue.put(samples)  # separately: receiving 100 k samples costs the listener's process ~14 MiB


def run_mllp(
    port: int,
    senders: int,
    messages: int,
    obx: int,
    prefix: str,
    pipelined: bool = False,
    on_done: Callable[[], None] | None = None,
) -> tuple[float, list, float]:
    """Run the senders in their own process; ``on_done`` is called when they finish, before their samples
    are received (so that memory sampling of this process stops before the samples arrive)."""
    queue: mp.Queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_sender_process,
        args=(port, senders, max(messages // senders, 1), obx, prefix, pipelined, queue),
    )
    proc.start()
    wall, cpu = queue.get()
    if on_done is not None:
        on_done()
    samples = queue.get()
    proc.join()
    return wall, samples, cpu


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by the embedded server's processes (0 with an external DATABASE_URL)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return 0.0
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    total = 0.0
    for proc in [postmaster, *postmaster.children()]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def own_cpu() -> float:
    """CPU seconds of this process and its children (a parse process pool)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


class PeakRSS:
    """Samples this process's RSS every 50 ms: the peak, and the series (to show it does not grow)."""

    def __init__(self) -> None:
        self.peak = 0
        self.series: list[int] = []
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss
            self.series.append(rss)
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def quarters(self) -> list[int]:
        """The highest RSS in each quarter of the sampled period (growth with the burst shows as a rising row)."""
        n = len(self.series)
        return (
            [max(self.series[n * q // 4 : max(n * (q + 1) // 4, n * q // 4 + 1)]) for q in range(4)]
            if n
            else []
        )

    def peak_at(self) -> float:
        """Where in the sampled period (0-1) the peak was first reached."""
        return self.series.index(max(self.series)) / len(self.series) if self.series else 0.0

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def raw_insert_baseline(app_db_url: str, practice_id: int, messages: int, obx: int, threads: int) -> float:
    raw = cbc("BASE", obx)
    digest = hashlib.sha256(raw).hexdigest()

    def work(n: int) -> None:
        with psycopg.connect(_libpq(app_db_url)) as conn:
            for _ in range(messages // threads):
                with conn.transaction():
                    conn.execute("SELECT set_config('app.practice_ids', %s, true)", (str(practice_id),))
                    conn.execute(
                        "INSERT INTO device_message (practice_id, source, raw, sha256, size_bytes, status)"
                        " VALUES (%s, 'bench', %s, %s, %s, 'received')",
                        (practice_id, raw, digest, len(raw)),
                    )

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return (messages // threads * threads) / (time.perf_counter() - start)


def parse_only_baseline(messages: int, obx: int) -> float:
    payloads = [cbc(f"P-{i}", obx) for i in range(messages)]
    start = time.perf_counter()
    for raw in payloads:
        to_device_outcome(process_bytes(raw, "bench"), raw)
    return messages / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@dataclass
class Run:
    """One measured MLLP run: what the senders saw and what the listener and PostgreSQL spent."""

    wall: float
    samples: list
    sender_cpu: float
    server_cpu: float
    pg_cpu: float
    load: tuple[float, float]
    rss_before: int
    rss: PeakRSS
    batches: int
    batched: int

    @property
    def sent(self) -> int:
        return len(self.samples)

    @property
    def latencies(self) -> list[float]:
        return [(end - start) * 1000 for start, end, _ in self.samples]


def measure(server_port: int, store: DeviceStore, pgdata: Path, args: argparse.Namespace, messages: int,
            prefix: str, pipelined: bool) -> Run:  # fmt: skip
    rss_before = psutil.Process().memory_info().rss
    pg_cpu, server_cpu = postgres_cpu(pgdata), own_cpu()
    batches, batched = store.batches, store.batched_messages
    load_before = os.getloadavg()[0]
    with PeakRSS() as rss:
        wall, samples, sender_cpu = run_mllp(
            server_port, args.senders, messages, args.obx, prefix, pipelined, on_done=rss.stop
        )
    return Run(wall, samples, sender_cpu, own_cpu() - server_cpu, postgres_cpu(pgdata) - pg_cpu,
               (load_before, os.getloadavg()[0]), rss_before, rss, store.batches - batches,
               store.batched_messages - batched)  # fmt: skip


def report(title: str, run: Run, loaded: tuple, obx: int, cores: int) -> None:
    ok = sum(1 for *_, aa in run.samples if aa)
    throughput = run.sent / run.wall
    lat = run.latencies
    print(title)
    print(f"  messages          {run.sent} sent, {ok} AA, {loaded[0]} ingested rows, {loaded[1]} observations in the DB;"
          f" {run.batches} commits, {run.batched / max(run.batches, 1):.1f} messages per commit")  # fmt: skip
    print(
        f"  throughput        {throughput:8.0f} msg/s  ({throughput * obx:.0f} observations/s)  target ≥ 500"
    )
    print(f"  latency send→visible  p50 {pct(lat, 0.50):.1f} ms   p95 {pct(lat, 0.95):.1f} ms   "
          f"max {max(lat):.1f} ms   mean {statistics.fmean(lat):.1f} ms")  # fmt: skip
    per_msg = {"listener": run.server_cpu, "postgres": run.pg_cpu, "senders": run.sender_cpu}
    total_cpu = sum(per_msg.values())
    print("  CPU per message   " + ", ".join(f"{k} {v / run.sent * 1000:.2f} ms" for k, v in per_msg.items())
          + f"  = {total_cpu / run.sent * 1000:.2f} ms → on {cores} idle cores ≈ {cores * run.sent / total_cpu:.0f} msg/s")  # fmt: skip
    print(f"  machine load      1-min load average {run.load[0]:.1f} before, {run.load[1]:.1f} after "
          f"(other processes share these {cores} cores)")  # fmt: skip
    quarters = " → ".join(f"{q / 2**20:.0f}" for q in run.rss.quarters())
    print(f"  listener RSS      peak {run.rss.peak / 2**20:.0f} MiB (before {run.rss_before / 2**20:.0f} MiB, "
          f"+{(run.rss.peak - run.rss_before) / 2**20:.0f} MiB, reached at {run.rss.peak_at():.0%} of the run); "
          f"highest per quarter of the run: {quarters} MiB")  # fmt: skip


def count_loaded(admin_url: str, prefix: str) -> tuple:
    # AA ⇒ committed: the acknowledged messages must be in the database right now
    with psycopg.connect(_libpq(admin_url)) as conn:
        return conn.execute(
            "SELECT count(*), coalesce(sum(observation_count), 0) FROM device_message"
            " WHERE status = 'ingested' AND control_id LIKE %s",
            (prefix + "%",),
        ).fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000, help="messages in the measured run")
    parser.add_argument("--burst", type=int, default=0,
                        help="then a burst of this many messages from streaming senders (e.g. 100000; 0: none)")  # fmt: skip
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--obx", type=int, default=20, help="results per message")
    parser.add_argument("--writers", type=int, default=DeviceStore.writers, help="DeviceStore writer tasks")
    parser.add_argument("--max-wait", type=float, default=DeviceStore.max_wait,
                        help="DeviceStore: seconds a writer lingers for more messages before committing")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=DeviceStore.max_batch)
    parser.add_argument(
        "--parse-processes",
        type=int,
        default=0,
        help="parse in a process pool of this size (0: on the listener's event loop)",
    )
    parser.add_argument("--fresh-statistics", action="store_true",
                        help="measure a brand-new database as it is (no ANALYZE; autovacuum once a minute)")  # fmt: skip
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        admin_url = setup_database(Path(tmp))
        practice_id = setup_practice(admin_url)
        engine = make_engine(app_url(admin_url), pool_size=args.writers + 2)
        store = DeviceStore(engine, practice_id, MASTER_KEY, writers=args.writers, max_wait=args.max_wait,
                            max_batch=args.max_batch)  # fmt: skip
        pool = ProcessPoolExecutor(args.parse_processes) if args.parse_processes else None
        server = start_in_background(
            hl7_handler(store.store, executor=pool),
            on_incomplete=store.on_incomplete,
            on_garbage=store.on_garbage,
        )
        burst = None
        try:
            run_mllp(server.port, args.senders, args.senders * 20, args.obx, "WARM-")  # warm-up
            if not args.fresh_statistics:
                analyse_after_warm_up(admin_url)
            freeze_startup_heap()  # as `vetconnect devices listen` does once it is listening
            main_run = measure(server.port, store, pgdata, args, args.messages, "RUN-", pipelined=False)
            main_loaded = count_loaded(admin_url, "RUN-")
            if args.burst:
                burst = measure(server.port, store, pgdata, args, args.burst, "BURST-", pipelined=True)
                burst_loaded = count_loaded(admin_url, "BURST-")
        finally:
            server.stop()
            engine.dispose()
            if pool is not None:
                pool.shutdown()
        raw_rate = raw_insert_baseline(
            app_url(admin_url), practice_id, min(args.messages, 5000), args.obx, args.senders
        )
        parse_rate = parse_only_baseline(min(args.messages, 2000), args.obx)
        if not os.environ.get("DATABASE_URL"):
            pgserver.stop(pgdata)

    print(
        f"machine: {cores} cores, Python {sys.version.split()[0]}, PostgreSQL embedded={not os.environ.get('DATABASE_URL')}"
    )
    setup = (f"{args.senders} senders, {args.obx}-OBX CBC, ACK after commit; writers={args.writers}, "
             f"max wait {args.max_wait * 1000:g} ms, max batch {args.max_batch}, "
             f"parse={f'{args.parse_processes} processes' if args.parse_processes else 'event loop'}")  # fmt: skip
    report(
        f"MLLP + parse + load ({setup}), each sender waits for its ACK:",
        main_run,
        main_loaded,
        args.obx,
        cores,
    )
    if burst is not None:
        report(f"burst of {args.burst}: senders stream without waiting for ACKs (latency includes queueing):",
               burst, burst_loaded, args.obx, cores)  # fmt: skip
    throughput = main_run.sent / main_run.wall
    print("baselines (same run):")
    print(f"  raw INSERT only   {raw_rate:8.0f} msg/s  ({args.senders} threads, no parsing)  "
          f"→ full path is {throughput / raw_rate:.2f}× of it")  # fmt: skip
    print(f"  parse+map only    {parse_rate:8.0f} msg/s  (1 thread, no DB)  → full path is "
          f"{throughput / parse_rate:.2f}× of it")  # fmt: skip


if __name__ == "__main__":
    main()
