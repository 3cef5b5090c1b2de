"""``vetconnect gdpr export`` against a real server: both files written with the client's data, the export audited,
an unknown practice or client ends with one line and exit code 1."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.conftest import MASTER_KEY
from vetconnect.cli import app
from vetconnect.settings import get_settings


@pytest.fixture
def gdpr_env(ws_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", ws_db.admin_url)
    monkeypatch.setenv("VETCONNECT_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    monkeypatch.delenv("VETCONNECT_DEMO", raising=False)
    get_settings.cache_clear()
    yield ws_db
    get_settings.cache_clear()


def test_export_writes_json_and_pdf_of_the_client(gdpr_env, tmp_path):
    a1 = gdpr_env.world.practices["a1"]
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["gdpr", "export", "--practice", "a1", "--client", str(a1.client_id),
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "J. Jansen-a1, 1 animal(s), 1 visit(s), 1 invoice(s)" in result.output
    document = json.loads((out / f"client-{a1.client_id}.json").read_text())
    assert document["contact"]["email"] == "jansen.a1@example.nl"
    assert document["animals"][0]["name"] == "Bello-a1"
    assert (out / f"client-{a1.client_id}.pdf").read_bytes().startswith(b"%PDF")
    with gdpr_env.system() as session:
        exports = session.execute(
            text(
                "SELECT actor_user_id, entity_ids FROM audit_log WHERE practice_id = :p AND action = 'export'"
            ),
            {"p": a1.practice_id},
        ).all()
    assert [(e.actor_user_id, e.entity_ids) for e in exports] == [(None, [a1.client_id])]


@pytest.mark.parametrize(
    ("practice", "client", "message"),
    [("nope", "1", "no practice with code nope"), ("a1", "999999", "Client 999999 does not exist")],
)
def test_an_unknown_practice_or_client_is_one_line_and_exit_1(gdpr_env, tmp_path, practice, client, message):
    result = CliRunner().invoke(app, ["gdpr", "export", "--practice", practice, "--client", client,
                                      "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
