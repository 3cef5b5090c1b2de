"""The `animana` Typer sub-app, driven through CliRunner against a real simulator."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from connectors.animana.cli import animana_app

runner = CliRunner()


def env_for(sim) -> dict[str, str]:
    return {
        "VETCONNECT_ANIMANA_URL": sim.base_url,
        "VETCONNECT_ANIMANA_CLIENT_ID": sim.client_id,
        "VETCONNECT_ANIMANA_CLIENT_SECRET": sim.client_secret,
    }


def test_counts_for_one_practice(sim, client):
    result = runner.invoke(animana_app, ["counts", "--practice", "1002"], env=env_for(sim))
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()}
    assert lines["resource"] == ["1002"]
    assert int(lines["agenda"][0]) == client.counts(1002)["agenda"]
    assert int(lines["total"][0]) == sum(client.counts(1002).values())


def test_counts_for_all_practices(sim):
    result = runner.invoke(animana_app, ["counts", "--all"], env=env_for(sim))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split()[1:] == ["1001", "1002", "1003", "1004"]


def test_counts_needs_exactly_one_selector(sim):
    assert runner.invoke(animana_app, ["counts"], env=env_for(sim)).exit_code != 0
    assert runner.invoke(animana_app, ["counts", "--all", "--practice", "1"], env=env_for(sim)).exit_code != 0


def test_counts_names_a_missing_variable(sim):
    env = env_for(sim) | {"VETCONNECT_ANIMANA_CLIENT_SECRET": None}
    result = runner.invoke(animana_app, ["counts", "--all"], env=env)
    assert result.exit_code == 1
    assert "VETCONNECT_ANIMANA_CLIENT_SECRET is not set" in result.output


def test_counts_reports_api_errors_without_the_secret(sim):
    env = env_for(sim) | {"VETCONNECT_ANIMANA_CLIENT_SECRET": "not-the-right-one"}
    result = runner.invoke(animana_app, ["counts", "--practice", "1001"], env=env)
    assert result.exit_code == 1
    assert "invalid_client" in result.output and "not-the-right-one" not in result.output


def test_simulate_prints_settings_and_serves():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(
        animana_app,
        [
            "simulate",
            "--port",
            str(port),
            "--seed",
            "3",
            "--practices",
            "2",
            "--client-secret",
            "demo-secret",
            "--duration",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"VETCONNECT_ANIMANA_URL=http://127.0.0.1:{port}" in result.output
    assert "VETCONNECT_ANIMANA_CLIENT_SECRET=demo-secret" in result.output
