"""Settings fail loudly with the variable's name; the secret and tokens never reach messages or logs."""

from __future__ import annotations

import logging

import pytest

from connectors.animana import AnimanaClient, AuthError, SettingsError, load_settings
from tests.connectors.animana.animana_support import SECRET, make_client

VARS = ("VETCONNECT_ANIMANA_URL", "VETCONNECT_ANIMANA_CLIENT_ID", "VETCONNECT_ANIMANA_CLIENT_SECRET")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("VETCONNECT_ANIMANA_URL", "http://animana.example:8765/")
    monkeypatch.setenv("VETCONNECT_ANIMANA_CLIENT_ID", "practice-sync")
    monkeypatch.setenv("VETCONNECT_ANIMANA_CLIENT_SECRET", SECRET)
    return monkeypatch


def test_settings_from_the_environment(env):
    settings = load_settings()
    assert settings.url == "http://animana.example:8765"
    assert settings.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings)


@pytest.mark.parametrize("missing", VARS)
def test_a_missing_variable_is_named(env, missing):
    env.delenv(missing)
    with pytest.raises(SettingsError, match=f"{missing} is not set") as caught:
        load_settings()
    assert SECRET not in str(caught.value)
    with pytest.raises(SettingsError, match=missing):
        AnimanaClient()  # the client reads the environment when given no settings


def test_all_missing_variables_are_named(monkeypatch):
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert all(name in str(caught.value) for name in VARS)


def test_an_invalid_value_is_named_but_not_echoed(env):
    env.setenv("VETCONNECT_ANIMANA_URL", "ftp://" + SECRET)
    with pytest.raises(SettingsError, match="VETCONNECT_ANIMANA_URL is invalid") as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_secret_and_tokens_never_appear_in_errors_or_logs(new_sim, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    sim = new_sim(seed=7, practices=1, faults=0.3, slow_seconds=0.01, fault_seed=5)
    with make_client(sim) as client:
        for number, _ in enumerate(client.iter_pages(1001, "agenda", page_size=20)):
            if number == 1:
                sim.simulator.expire_tokens()  # force a refresh mid-stream
        assert SECRET not in repr(client)
    tokens = sim.simulator.issued_tokens()
    assert len(tokens) > 1
    wrong = load_settings(url=sim.base_url, client_id=sim.client_id, client_secret=SECRET + "-old")
    sim.configure(faults=0.0)
    with AnimanaClient(wrong) as client, pytest.raises(AuthError) as caught:
        client.counts(1001)
    texts = [caplog.text, capsys.readouterr().out, str(caught.value), repr(caught.value)]
    for text in texts:
        assert SECRET not in text
        assert not any(token in text for token in tokens)
    assert "GET /v1/practices/1001/agenda" in caplog.text  # the logs are there, just without secrets
