"""The app's pages under streamlit.testing.AppTest, against the demo world in a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vetconnect.demo import DEMO_PASSWORD, build_demo_world
from vetconnect.settings import get_settings

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def demo_env(fresh_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    get_settings.cache_clear()
    with fresh_db.system() as session:
        build_demo_world(session, master_key=get_settings().require_master_key())
    yield fresh_db
    get_settings.cache_clear()


def sign_in(username: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    return at


def test_wrong_password_shows_an_error_and_stays_on_sign_in(demo_env):
    at = sign_in("vet", "not-the-password")
    assert not at.exception
    assert at.error[0].value == "Unknown user name or wrong password."
    assert "user" not in at.session_state


@pytest.mark.parametrize(
    ("username", "practices"),
    [("vet", 2), ("reception", 1), ("franchise", 3), ("franchise2", 2)],
)
def test_hub_shows_exactly_the_practices_of_the_user(demo_env, username, practices):
    at = sign_in(username, DEMO_PASSWORD)
    assert not at.exception
    assert at.title[0].value.startswith("Goedendag")
    assert f"{practices} practice(s)" in at.caption[0].value
    assert len(at.dataframe[0].value) == practices
