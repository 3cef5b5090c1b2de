"""What the backup tests share: an embedded server of the test's own that archives its WAL, a write that touches
many tables, a per-table snapshot to compare a restore with, and the real `vetconnect` CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import MASTER_KEY
from tests.factories import build_world
from vetconnect import pgserver
from warehouse.kernel.db import make_engine
from warehouse.kernel.tenancy import system_session
from warehouse.migrations import runner as migrate
from warehouse.tenants.admin import add_franchise, add_practice

ROOT = Path(__file__).resolve().parents[2]
Snapshot = dict[str, tuple[int, str | None]]


@dataclass
class Home:
    path: Path
    server: pgserver.ServerInfo

    @property
    def backups(self) -> Path:
        return self.path / "backups"

    @property
    def url(self) -> str:
        return self.server.url()


def new_home() -> Path:
    # A short path outside pytest's basetemp (see tests/conftest.py): the socket lives in PGDATA.
    return Path(tempfile.mkdtemp(prefix="vc-bk-"))


@contextmanager
def archiving_home() -> Iterator[Home]:
    """A VetConnect home whose server archives its WAL, migrated, holding the test world; removed afterwards."""
    root = new_home()
    server = pgserver.start(root / "pgdata", wal_archive=root / "backups" / "wal")
    try:
        migrate.upgrade(server.url())
        engine = make_engine(server.url())
        with system_session(engine, reason="backup drill: the world") as session:
            build_world(session, MASTER_KEY)
        engine.dispose()
        yield Home(root, server)
    finally:
        pgserver.stop(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


def add_practice_to(url: str, franchise: str, code: str) -> None:
    """A write touching many tables: the practice, its partitions, data key and audit chain."""
    engine = make_engine(url)
    with system_session(engine, reason=f"backup drill: practice {code}") as session:
        franchise_id = add_franchise(session, code=franchise, name=f"Franchise {franchise}").id
        add_practice(
            session, franchise_id=franchise_id, code=code, name=f"Praktijk {code}", master_key=MASTER_KEY
        )
    engine.dispose()


def snapshot(server: pgserver.ServerInfo) -> Snapshot:
    """Per table (every ordinary table and partition): its row count and an md5 of its rows in text order."""
    with psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=pgserver.SUPERUSER, dbname=pgserver.DATABASE
    ) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
        ).fetchall()
        result: Snapshot = {}
        for schema, name in tables:
            table = sql.Identifier(schema, name)
            query = sql.SQL("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t")
            result[f"{schema}.{name}"] = conn.execute(query.format(table)).fetchone()  # type: ignore[assignment]
    return result


def run_vetconnect(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(VETCONNECT_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "vetconnect.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )
