"""The demo world as the README promises it: each demo account signs in (managers and admins through the
first-time TOTP enrolment) and sees exactly its practices; the practices stand in the three phases of the move
off Animana, and Animana (the simulator) answers beside the app. Replaces tests/dashboard/test_app_pages.py."""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest
from rich.console import Console
from sqlalchemy import text

from connectors.animana import AnimanaClient
from tests.practice_world import sign_in
from vetconnect.animana_cli import demo_sync
from vetconnect.demo import DEMO_PASSWORD, build_demo_world
from vetconnect.demo_animana import SETTINGS_ENV, WritebackLoop, demo_animana, set_demo_modes
from vetconnect.settings import get_settings
from warehouse.integration.modes import modes
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext


@pytest.fixture
def demo_env(fresh_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    monkeypatch.setenv("VETCONNECT_DEMO_ANIMANA", "0")  # the Animana load has its own tests
    monkeypatch.delenv("VETCONNECT_MASTER_KEY", raising=False)
    get_settings.cache_clear()
    with fresh_db.system() as session:
        build_demo_world(session, master_key=get_settings().require_master_key())
    yield fresh_db
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("username", "practices", "pages"),
    [("vet", 2, 3), ("reception", 1, 3), ("franchise", 3, 3), ("franchise2", 2, 3), ("analyst", 3, 1)],
)
def test_each_demo_role_signs_in_and_sees_exactly_its_practices(demo_env, username, practices, pages):
    at = sign_in(username, DEMO_PASSWORD)  # answers the enrolment QR step for franchise managers
    assert not at.exception
    assert at.title[0].value.startswith("Goedendag")
    user = at.session_state["user"]
    assert len(user.context.practice_ids) == practices
    assert user.mfa_enabled == user.mfa_required
    choices = at.sidebar.selectbox
    if practices > 1:
        assert len(choices[0].options) == practices + (1 if user.may_choose_all_practices else 0)
    for page in ("workspaces/account.py", "workspaces/scheduling.py", "workspaces/waiting_room.py")[:pages]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_the_demo_world_keeps_the_moment_it_was_first_built(demo_env):
    """The simulator's "now" is the moment the demo was first built, kept so that a rerun loads the same
    world (and its sync finds nothing new) instead of a world anchored to another day."""
    key = get_settings().require_master_key()
    with demo_env.system() as session:
        first = build_demo_world(session, master_key=key)
    with demo_env.system() as session:
        again = build_demo_world(session, master_key=key)
    assert not again.created
    assert again.anchor == first.anchor
    assert first.anchor.tzinfo is not None
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - first.anchor < dt.timedelta(minutes=10)


def test_the_demo_practices_stand_in_the_three_phases(demo_env):
    """Amstel works in hybrid for clients and agenda, Domstad still fully on Animana, Spaarne's agenda native;
    each switch made and audited as the demo's franchise admin."""
    switched = set_demo_modes(demo_env.app_engine, demo_env.admin_engine)
    assert switched == [("dz-amstel", "clients", "hybrid"), ("dz-amstel", "agenda", "hybrid"),
                        ("dz-haarlem", "agenda", "native")]  # fmt: skip
    with demo_env.system() as session:
        ids = {code: tenant_id_by_code(session, code) for code in ("dz-amstel", "dz-utrecht", "dz-haarlem")}
        found = {code: modes(session, practice_id) for code, practice_id in ids.items()}
        audited = session.execute(
            text(
                "SELECT t.code, u.username, a.detail->>'module', a.detail->>'to' FROM audit_log a "
                "JOIN tenant t ON t.id = a.practice_id JOIN app_user u ON u.id = a.actor_user_id "
                "WHERE a.entity = 'integration_mode' ORDER BY a.practice_id, a.seq"
            )
        ).all()
    assert found["dz-amstel"] == {
        "clients": "hybrid",
        "agenda": "hybrid",
        "records": "animana",
        "invoices": "animana",
    }
    assert set(found["dz-utrecht"].values()) == {"animana"}
    assert found["dz-haarlem"]["agenda"] == "native" and found["dz-haarlem"]["clients"] == "animana"
    assert [tuple(r) for r in audited] == [("dz-amstel", "admin", "clients", "hybrid"),
                                           ("dz-amstel", "admin", "agenda", "hybrid"),
                                           ("dz-haarlem", "admin", "agenda", "native")]  # fmt: skip


def test_animana_answers_beside_the_demo_app_both_ways(demo_env, monkeypatch):
    """The simulator runs beside the app with the app's settings pointing at it; the background loop writes a
    hybrid practice's local change back, and brings an edit made on the Animana side in."""
    monkeypatch.setenv("VETCONNECT_DEMO_SCALE", "small")
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    key = get_settings().require_master_key()
    with demo_env.system() as session:
        summary = build_demo_world(session, master_key=key)
    with demo_animana(demo_env.admin_engine, ["dz-amstel"], summary.anchor, port=0) as animana:
        assert os.environ["VETCONNECT_ANIMANA_URL"] == animana.sim.base_url  # what the app started now reads
        with AnimanaClient.from_env() as client:
            assert 1001 in {p.id for p in client.practices()}
        with animana.client() as client:
            demo_sync(demo_env.app_engine, client, animana.practices, master_key=key)
            set_demo_modes(demo_env.app_engine, demo_env.admin_engine)
            (amstel,) = animana.practices
            ours, theirs = _two_synced_clients(demo_env, amstel.practice_id)
            said = io.StringIO()
            loop = WritebackLoop(demo_env.app_engine, animana, master_key=key, console=Console(file=said))

            with demo_env.as_app(AccessContext.for_practices([amstel.practice_id])) as session:
                session.execute(
                    text(
                        "UPDATE client SET last_name = 'Hybride-Bakker' WHERE practice_id = :p AND id = :id"
                    ),
                    {"p": amstel.practice_id, "id": ours[0]},
                )
            (report,) = loop.push_once(client)
            assert report.sent == 1
            assert client.get(1001, "relations", ours[1]).last_name == "Hybride-Bakker"  # type: ignore[union-attr]

            animana.sim.edit(1001, "relations", theirs[1], {"last_name": "Animana-Jansen"})
            loop.sync_once(client)
            with demo_env.system() as session:
                now = session.execute(
                    text("SELECT last_name FROM client WHERE practice_id = :p AND id = :id"),
                    {"p": amstel.practice_id, "id": theirs[0]},
                ).scalar()
            assert now == "Animana-Jansen"
            assert "write-back dz-amstel → Animana: 1 sent" in said.getvalue()
            assert "sync Animana → dz-amstel: 0 new, 1 changed" in said.getvalue()
    assert "VETCONNECT_ANIMANA_URL" not in os.environ  # the demo's settings leave with it


def _two_synced_clients(db, practice_id: int) -> list[tuple[int, int]]:  # noqa: ANN001
    with db.system() as session:
        rows = session.execute(
            text(
                "SELECT id, animana_id FROM client WHERE practice_id = :p AND animana_id IS NOT NULL "
                "ORDER BY id LIMIT 2"
            ),
            {"p": practice_id},
        ).all()
    return [(r.id, int(r.animana_id)) for r in rows]
