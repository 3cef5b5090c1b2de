"""Backup and restore benchmark (not a test; prints figures).

    .venv/bin/python bench/backup.py --practices 20 --scale medium      # the full run
    .venv/bin/python bench/backup.py --practices 2 --scale small        # a quick one

1. The `bench.ingest` world: a simulator in its own process, every practice synced into a migrated database on
   an embedded server that archives its WAL (as `vetconnect db start` runs it).
2. A full backup (`vetconnect.backup.create_backup`, encrypted as it streams): time and size, and the ratio to the
   same `pg_basebackup` tar written to disk unencrypted; a WAL segment's archiving, encrypted vs copied. Then a day's churn on top — a timestamped
   write load for `--churn-s` seconds and a no-op update of every tenth lab observation (new row versions, as edits
   make) — and an incremental backup: time and size.
3. Restore of full + incremental to the end of the archive into a new home: time (verify, combine, replay).
4. RPO: a writer commits a timestamped row every 10 ms; the postmaster is killed with SIGKILL mid-load (its pg_wal
   is taken as lost with the machine), the archive is restored into a new home, and the writes acknowledged to
   the writer but missing after the restore are counted. `archive_timeout` is 30 s (`pgserver.ARCHIVE_TIMEOUT`):
   a partly filled segment is archived at the latest 30 s after its first write, so the loss is bounded by 30 s
   plus the copy of one segment, within the 1-minute target with room for a slow disk.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench.ingest import api_totals, libpq, link_practices, new_database, run_sync, start_simulator
from vetconnect import backup, backup_keys, pgserver
from vetconnect.backup_crypto import decrypt_file, encrypt_file

WRITE_EVERY_S = 0.01


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@dataclass
class Writer:
    """Commits (seq, time) rows until the server goes away; remembers the last commit it was told succeeded."""

    url: str
    acknowledged: int = 0
    acknowledged_at: float = 0.0

    def run(self, stop: threading.Event) -> None:
        with psycopg.connect(libpq(self.url), autocommit=True) as conn:
            seq = self.acknowledged
            while not stop.is_set():
                seq += 1
                try:
                    conn.execute("INSERT INTO bench_write (seq, at) VALUES (%s, clock_timestamp())", (seq,))
                except psycopg.Error:
                    return
                self.acknowledged, self.acknowledged_at = seq, time.time()
                time.sleep(WRITE_EVERY_S)


def write_for(url: str, seconds: float) -> Writer:
    writer, stop = Writer(url), threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return writer


def churn(url: str, seconds: float) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_write (seq bigint PRIMARY KEY, at timestamptz NOT NULL)"
        )
        conn.execute("UPDATE lab_observation SET text = text WHERE id % 10 = 0")
    write_for(url, seconds)


class StepClock:
    """Where each step of a restore starts (``backup.restore``'s ``step`` callback), summed per kind of step."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, step: str) -> None:
        self.marks.append((step.split(" ")[0], time.perf_counter()))  # "verifying", "combining", "replaying"

    def summary(self, ended: float) -> str:
        totals: dict[str, float] = {}
        for (name, start), (_, end) in zip(self.marks, [*self.marks[1:], ("", ended)], strict=True):
            totals[name] = totals.get(name, 0.0) + end - start
        return ", ".join(f"{name} {seconds:,.1f} s" for name, seconds in totals.items())


def plain_basebackup(server: pgserver.ServerInfo, target: Path) -> float:
    """The unencrypted baseline: the same pg_basebackup tar (WAL fetched) written to disk as it is."""
    started = time.perf_counter()
    done = backup.pg_tool(
        "pg_basebackup", "-h", str(server.socket_dir), "-p", str(server.port), "-U", pgserver.SUPERUSER,
        "-D", str(target), "--format=tar", "--wal-method=fetch", "--checkpoint=fast",
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    shutil.rmtree(target)
    return elapsed


def wal_cost(archive: Path, workdir: Path) -> str:
    """Archiving a 16 MB segment: the drainer's encrypt + fsync + rename ÷ basic_archive's copy + fsync + rename."""
    segment = next(p for p in sorted(archive.iterdir()) if len(p.name) == 24)
    plain = workdir / "segment"
    decrypt_file(segment, plain, lambda g: backup_keys.load_key(backup_keys.key_store(archive.parent), g))
    rounds, timings = 10, {"copy": 0.0, "encrypt": 0.0}
    for _ in range(rounds):
        started = time.perf_counter()
        copied = workdir / ".copy.tmp"
        shutil.copyfile(plain, copied)
        with copied.open("rb+") as fh:
            os.fsync(fh.fileno())
        copied.replace(workdir / "copied")
        timings["copy"] += time.perf_counter() - started
        started = time.perf_counter()
        encrypt_file(plain, workdir / "encrypted", "bench", bytes(32))
        timings["encrypt"] += time.perf_counter() - started
    size = plain.stat().st_size * rounds / 1e6
    copy_mb_s, enc_mb_s = size / timings["copy"], size / timings["encrypt"]
    return (f"WAL archiving of a segment: encrypted {enc_mb_s:,.0f} MB/s, plain copy {copy_mb_s:,.0f} MB/s "
            f"(encrypted ÷ plain time {copy_mb_s / enc_mb_s:.2f}×)")  # fmt: skip


def restore_into(backups: Path, workdir: Path, name: str) -> tuple[float, str, pgserver.ServerInfo]:
    home, clock = workdir / name, StepClock()
    started = time.perf_counter()
    backup.restore(backups, home, step=clock)
    ended = time.perf_counter()
    return ended - started, clock.summary(ended), pgserver.start(home / "pgdata")


def restored_writes(server: pgserver.ServerInfo, database: str) -> tuple[int, float | None]:
    url = server.url(database=database)
    with psycopg.connect(libpq(url)) as conn:
        seq, at = conn.execute(
            "SELECT coalesce(max(seq), 0), extract(epoch FROM max(at)) FROM bench_write"
        ).fetchone()
    return seq, float(at) if at is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, default=20)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--port", type=int, default=8796)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--churn-s", type=float, default=20, help="seconds of timestamped writes before the incr."
    )
    parser.add_argument("--load-s", type=float, default=75, help="RPO run: the load lasts at most this long")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vc-bench-bk-"))
    home, backups = workdir / "home", workdir / "home" / "backups"
    info = pgserver.start(home / "pgdata", wal_archive=backups / "wal")
    sim = start_simulator(args.practices, args.scale, args.port)
    base = f"http://127.0.0.1:{args.port}"
    restored: list[Path] = []
    try:
        records = api_totals(base, args.practices)
        url = new_database(info.url(database="postgres"))
        database = make_url(url).database or ""
        link_practices(url, args.practices)
        synced_s, _ = run_sync(url, base, args.workers)
        print(
            f"world: {args.practices} practices at {args.scale}, {records:,} API records, synced in {synced_s:,.0f} s"
        )

        full = backup.create_backup(info, backups)
        full_s = (full.finished_at - full.started_at).total_seconds()
        plain_s = plain_basebackup(info, workdir / "plain")
        print(f"full backup: {full_s:,.1f} s, {_mb(full.size_bytes)}; encrypted ÷ plain pg_basebackup of the "
              f"same tar to disk ({plain_s:,.1f} s): {full_s / plain_s:.2f}×")  # fmt: skip
        print(wal_cost(backups / "wal", workdir))
        churn(url, args.churn_s)
        incr = backup.create_backup(info, backups, incremental=True)
        incr_s = (incr.finished_at - incr.started_at).total_seconds()
        print(f"incremental backup after the churn: {incr_s:,.1f} s, {_mb(incr.size_bytes)} "
              f"({incr.size_bytes / full.size_bytes:.0%} of the full)")  # fmt: skip
        backup.archive_now(info)
        restore_s, steps, first = restore_into(backups, workdir, "restored")
        restored.append(first.pgdata)
        print(
            f"restore (verify, combine full + incremental, replay the archive): {restore_s:,.1f} s ({steps})"
        )
        pgserver.stop(first.pgdata)

        # RPO: SIGKILL the postmaster at a random moment of the load; pg_wal is lost with it.
        writer, stop = Writer(url), threading.Event()
        writer.acknowledged = restored_writes(info, database)[0]
        thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(random.uniform(args.load_s / 3, args.load_s))
        os.kill(info.pid, signal.SIGKILL)
        thread.join(timeout=30)
        stop.set()
        killed_at = time.time()
        _, _, after = restore_into(backups, workdir, "after-crash")
        restored.append(after.pgdata)
        seq, at = restored_writes(after, database)
        lost = writer.acknowledged - seq
        window = writer.acknowledged_at - at if at is not None else float("nan")
        print(f"RPO: server killed after {writer.acknowledged:,} acknowledged writes; restored up to write {seq:,}: "
              f"{lost:,} writes lost, the last {window:,.1f} s before the crash (target <= 60 s)")  # fmt: skip
        print(f"  (crash to restored and serving: {time.time() - killed_at:,.1f} s)")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        for pgdata in restored:
            pgserver.stop(pgdata)
        pgserver.stop(home / "pgdata")
        shutil.rmtree(workdir, ignore_errors=True)  # a full 20-practice run leaves GBs otherwise


if __name__ == "__main__":
    main()
