"""The System health page under AppTest: the franchise admin reads every check with its status, value, threshold
and detail; a backup taken meanwhile shows after "Check again"; a receptionist is not offered the page."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.dashboard.test_ws_app import ok
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST, click, sign_in
from vetconnect.settings import get_settings
from warehouse.security.accounts import add_user

PAGE = "workspaces/system_health.py"


@pytest.fixture
def home(app_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: ANN001
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    get_settings.cache_clear()
    with app_env.system() as session:
        add_user(session, username="fa-admin", full_name="Admin Franchise A", password=PASSWORD,
                 memberships=[(app_env.world.franchises["fa"], "franchise_admin")])  # fmt: skip
    return tmp_path


def _rows(at) -> dict[str, dict[str, str]]:  # noqa: ANN001
    (frame,) = [df.value for df in at.dataframe if "Check" in df.value.columns]
    return {row["Check"]: row for row in frame.to_dict("records")}


def test_the_admin_reads_the_checks_and_a_new_backup_shows_after_checking_again(home: Path):
    at = sign_in("fa-admin")
    at.switch_page(PAGE).run()
    ok(at)
    rows = _rows(at)
    assert {
        "database",
        "sync lag",
        "writeback outbox",
        "dead letters",
        "conflicts",
        "device inbox",
        "backup",
    } <= set(rows)
    assert rows["database"]["Status"] == "ok" and "head" in rows["database"]["Detail"]
    assert rows["backup"]["Status"] == "fail"
    assert "Overall: fail" in at.error[0].value

    taken = home / "backups" / "20261204T090000Z-full"
    taken.mkdir(parents=True)
    (taken / "backup_manifest").write_text("{}")
    (taken / "vetconnect.json").write_text(json.dumps({
        "label": taken.name, "kind": "full", "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(), "size_bytes": 64_900_000}))  # fmt: skip
    click(at, "Check again")
    ok(at)
    assert _rows(at)["backup"]["Status"] == "ok"


def test_a_receptionist_is_not_offered_system_health(home: Path):
    at = sign_in(RECEPTIONIST)
    assert not offered(at, PAGE)
