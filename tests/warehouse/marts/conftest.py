"""Marts tests run on a warehouse synced from the Animana simulator (the pipeline tests' helpers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from connectors.animana.simulator import running_simulator
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SECRET, SyncWorld, link_world
from tests.conftest import Database
from vetconnect.demo import roster_and_remind
from vetconnect.settings import get_settings
from warehouse.kernel.tenancy import AccessContext
from warehouse.marts.refresh import refresh_all
from warehouse.security.signin import PracticeChoice, SignedInUser

ROOT = Path(__file__).resolve().parents[3]

TODAY = dt.date(2026, 11, 1)


@contextmanager
def synced_mart_world(db: Database) -> Iterator[SyncWorld]:
    """Two practices of one franchise in ``db``, synced from a seeded simulator, with rosters and reminders; the
    simulator runs until the block ends."""
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        world = SyncWorld(db, sim, link_world(db, [1001, 1002]))
        sync(world)
        # What `vetconnect demo` does after its sync: Animana has neither rosters nor reminders.
        roster_and_remind(db.app_engine, db.admin_engine, [p.code for p in world.practices], today=TODAY)
        yield world


@pytest.fixture
def mart_world(fresh_db: Database) -> Iterator[SyncWorld]:
    """`synced_mart_world` in a database of the test's own; the simulator keeps running."""
    with synced_mart_world(fresh_db) as world:
        yield world


def sync(world: SyncWorld) -> None:
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)


def signed_in(db, username: str, role: str, practices: list) -> SignedInUser:  # noqa: ANN001
    ids = [p.practice_id for p in practices]
    with db.system() as session:
        user_id = session.scalar(
            text(
                "INSERT INTO app_user (username, full_name, password_hash) VALUES (:u, :u, 'x') RETURNING id"
            ),
            {"u": username},
        )
    return SignedInUser(
        user_id=user_id, username=username, full_name=f"Test {username}", roles=frozenset({role}),
        context=AccessContext.for_practices(ids, user_id=user_id),
        practices=tuple(PracticeChoice(p.practice_id, p.code, p.code) for p in practices),
        practice_roles={pid: frozenset({role}) for pid in ids},
    )  # fmt: skip


@pytest.fixture
def app_env(mart_world, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", mart_world.db.admin_url)
    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    get_settings.cache_clear()
    refresh_all(mart_world.db.app_engine, mart_world.db.admin_engine)
    yield mart_world
    get_settings.cache_clear()


def run_page(page: str, user: SignedInUser) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard" / "workspaces" / page), default_timeout=60)
    at.session_state["user"] = user
    return at.run()
