"""Test infrastructure: a real PostgreSQL server (the embedded one, or DATABASE_URL), migrated databases
cloned from a template, and sessions under the application role.

Each xdist worker starts its own embedded server in its own temporary directory, so workers never share
state; a test that needs committed data gets its own database cloned from the migrated template (~50 ms).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from vetconnect import pgserver
from warehouse.kernel.db import app_url, make_engine, normalise_url
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.migrations import runner as migrate

if TYPE_CHECKING:
    from tests.factories import World

# Fixtures shared across test packages (the tests mirror the code's packages, so a service test and the page
# test of the same workspace live apart but stand on the same practice world).
pytest_plugins = ["tests.practice_world", "tests.synced_world"]

MASTER_KEY = bytes(range(32))
# Still argon2id, at a cost that lets the suite create hundreds of accounts on 2 cores (the default costs
# ~0.5 s per hash here). Subprocesses started by tests inherit it.
os.environ.setdefault("VETCONNECT_ARGON2_TIME_COST", "1")
os.environ.setdefault("VETCONNECT_ARGON2_MEMORY_KIB", "8192")


@dataclass
class Database:
    """A migrated database with engines for the admin, the application role and the system bypass."""

    name: str
    admin_url: str
    admin_engine: Engine
    app_engine: Engine

    def system(self, reason: str = "test set-up"):  # noqa: ANN201
        return system_session(self.admin_engine, reason=reason)

    def as_app(self, context: AccessContext):  # noqa: ANN201
        return tenant_session(self.app_engine, context)

    def dispose(self) -> None:
        self.admin_engine.dispose()
        self.app_engine.dispose()


def _server_admin_url(tmp_root: Path) -> str:
    external = os.environ.get("DATABASE_URL")
    if external:
        return normalise_url(external)
    info = pgserver.start(tmp_root / "pgdata")
    return info.url(database="postgres")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    # Not under pytest's basetemp: another pytest session resets that tree to mode 0700, which would lock the
    # server's (non-root) system user out of its own data directory mid-run.
    root = Path(tempfile.mkdtemp(prefix="vetconnect-test-pg-"))
    url = _server_admin_url(root)
    yield url
    if not os.environ.get("DATABASE_URL"):
        pgserver.stop(root / "pgdata")
    shutil.rmtree(root, ignore_errors=True)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return _database_url(server_url, name)


def analyse_template(server_url: str, name: str) -> None:
    """Statistics in a template, as a database in use has them: its clones start with them, and a sync's
    `refresh_practice_statistics` analyses only what it changed rather than every never-analysed table."""
    with psycopg.connect(_libpq(_database_url(server_url, name)), autocommit=True) as conn:
        conn.execute("ANALYZE")


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_db(server_url: str) -> str:
    """A database migrated to head, used only as a template for clones."""
    name = f"vc_template_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    migrate.upgrade(url)
    analyse_template(server_url, name)
    return name


def open_database(server_url: str, template: str) -> Database:
    name = f"vc_test_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name, template=template)
    return Database(name, url, make_engine(url), make_engine(app_url(url), pool_size=25))


@dataclass
class WorldTemplate:
    """A database holding the factories' world, used only as a template, and that world's ids (a clone has the
    same rows and the same ids)."""

    name: str
    world: World


@pytest.fixture(scope="session")
def world_template(server_url: str, template_db: str) -> WorldTemplate:
    """The factories' world, built once per worker: cloning it (~0.2 s) instead of building it (~1 s) in each of
    the hundreds of tests that stand on it is minutes of the suite."""
    from tests.factories import build_world

    db = open_database(server_url, template_db)
    with db.system() as session:
        world = build_world(session, MASTER_KEY)
    db.dispose()  # a template must have no connections when it is cloned
    analyse_template(server_url, db.name)
    return WorldTemplate(db.name, world)


def open_world_database(server_url: str, template: WorldTemplate) -> Database:
    """A database of the test's own with the factories' world in it (``db.world``, a copy the test may change)."""
    db = open_database(server_url, template.name)
    db.world = copy.deepcopy(template.world)  # type: ignore[attr-defined]
    return db


@pytest.fixture
def fresh_world_db(server_url: str, world_template: WorldTemplate) -> Iterator[Database]:
    """A database of the test's own holding the factories' world (``db.world``)."""
    db = open_world_database(server_url, world_template)
    yield db
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture
def fresh_db(server_url: str, template_db: str) -> Iterator[Database]:
    """A migrated, empty database of the test's own."""
    db = open_database(server_url, template_db)
    yield db
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture(scope="module")
def world_db(server_url: str, world_template: WorldTemplate) -> Iterator[Database]:
    """A database with two franchises, each with practices holding a row in every tenant table (module-wide;
    tests must not commit changes to it, or must undo them)."""
    db = open_world_database(server_url, world_template)
    yield db
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture
def admin_conn(world_db: Database) -> Iterator[psycopg.Connection]:
    """A superuser psycopg connection to the world database inside a transaction that is rolled back."""
    with psycopg.connect(_libpq(world_db.admin_url)) as conn:
        yield conn
        conn.rollback()


def as_role(conn: psycopg.Connection, context: AccessContext | None) -> None:
    """Switch a superuser transaction to the application role with ``context`` (None: nothing set)."""
    conn.execute("SET LOCAL ROLE vetconnect_app")
    if context is not None:
        conn.execute(
            "SELECT set_config('app.user_id', %s, true), set_config('app.practice_ids', %s, true)",
            (str(context.user_id or ""), context.practice_ids_setting),
        )
