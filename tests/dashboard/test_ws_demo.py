"""The demo world as the README promises it: each demo account signs in (managers and admins through the
first-time TOTP enrolment) and sees exactly its practices. Replaces tests/dashboard/test_app_pages.py."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.practice_world import sign_in
from vetconnect.demo import DEMO_PASSWORD, build_demo_world
from vetconnect.settings import get_settings


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
