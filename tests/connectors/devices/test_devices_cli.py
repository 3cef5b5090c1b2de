"""``vetconnect devices`` against a real database: import, drop folders, inbox/resolve/retry, and listen."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import hl7
import pytest
from typer.testing import CliRunner

from connectors.devices.mllp import MLLPClient
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import SAMPLES, make_clinic, messages, observations, vet_oru
from vetconnect.cli import app
from vetconnect.settings import get_settings

pytestmark = pytest.mark.xdist_group("devices-db")
runner = CliRunner()


@pytest.fixture
def cli_env(fresh_db, monkeypatch, tmp_path):
    env = {
        "DATABASE_URL": fresh_db.admin_url,
        "VETCONNECT_HOME": str(tmp_path / "home"),
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    clinic = make_clinic(fresh_db, "p1", orders=("R-991133",))
    yield fresh_db, clinic, tmp_path, env
    get_settings.cache_clear()


def test_import_prints_one_line_per_file(cli_env):
    db, clinic, tmp, _ = cli_env
    cbc = SAMPLES / "hl7/lri_nist_cbc_typical.hl7"
    stray = tmp / "stray.hl7"
    stray.write_bytes(vet_oru("CLI-1", chip="555555555555555", owner="Nobody^X", accession="NONE-1"))
    result = runner.invoke(app, ["devices", "import", str(cbc), str(stray), str(cbc), "--practice", "p1"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"{cbc}: ingested 28 observations"
    assert lines[1].startswith(
        f"{stray}: inbox: no_patient_match: no lab order NONE-1 or PL-77; no patient with chip"
    )
    assert re.fullmatch(
        rf"{re.escape(str(cbc))}: duplicate of message \d+: same content \(not loaded again\)", lines[2]
    )
    assert len(observations(db, clinic)) == 28

    listed = runner.invoke(app, ["devices", "inbox", "--practice", "p1"])
    assert "1 message(s) in the inbox" in listed.output
    inbox_id = int(listed.output.split()[0])
    resolved = runner.invoke(
        app, ["devices", "resolve", str(inbox_id), str(clinic.patients["minoes"]), "-p", "p1"]
    )
    assert resolved.output.strip() == f"message {inbox_id}: resolved 2 observations"
    assert runner.invoke(app, ["devices", "retry", "-p", "p1"]).output.strip() == (
        "retried 0: 0 ingested, 0 still in the inbox"
    )


def test_import_errors_are_one_line(cli_env):
    _, _, tmp, _ = cli_env
    unknown = runner.invoke(app, ["devices", "import", str(tmp / "x.hl7"), "--practice", "nope"])
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "error: no practice with code 'nope'"
    missing = runner.invoke(app, ["devices", "import", str(tmp / "missing.hl7"), "--practice", "p1"])
    assert missing.exit_code == 1
    assert missing.output.strip() == f"{tmp / 'missing.hl7'}: cannot read: No such file or directory"


def test_drop_folder_files_move_only_after_they_are_stored(cli_env):
    db, clinic, tmp, _ = cli_env
    folder = tmp / "home" / "drop" / "p1"
    folder.mkdir(parents=True)
    (folder / "cbc.hl7").write_bytes((SAMPLES / "hl7/lri_nist_cbc_typical.hl7").read_bytes())
    (folder / "junk.txt").write_bytes(b"not a lab result")
    (folder / "busy.hl7.part").write_bytes(b"MSH|")  # still being written: left alone
    result = runner.invoke(app, ["devices", "drop"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["busy.hl7.part", "failed", "processed"]
    by_name = {m.filename: m for m in messages(db, clinic)}
    assert sorted(p.name for p in (folder / "processed").iterdir()) == [f"{by_name['cbc.hl7'].id}-cbc.hl7"]
    assert sorted(p.name for p in (folder / "failed").iterdir()) == [f"{by_name['junk.txt'].id}-junk.txt"]
    assert (
        by_name["cbc.hl7"].source == "drop:p1" and by_name["junk.txt"].inbox_reason == "unrecognised_format"
    )
    assert "ingested 28 observations → processed/" in result.output
    assert runner.invoke(app, ["devices", "drop", "-p", "p1"]).output.startswith("nothing to do")


def test_listen_prints_the_port_acks_and_stops_on_ctrl_c(cli_env):
    db, clinic, _, env = cli_env
    proc = subprocess.Popen(
        [sys.executable, "-m", "vetconnect.cli", "devices", "listen", "--port", "0", "--practice", "p1"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"MLLP listening on 127\.0\.0\.1:(\d+) for practice p1; Ctrl-C to stop", line)
        assert match, line + proc.stderr.read()

        async def send() -> bytes:
            async with await MLLPClient.connect("127.0.0.1", int(match.group(1))) as client:
                return await client.send(vet_oru("LISTEN-1"))

        ack = asyncio.run(send())
        assert str(hl7.parse(ack.decode()).segment("MSA")(1)) == "AA"
        assert [m.status for m in messages(db, clinic)] == ["ingested"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "stopped" in out
