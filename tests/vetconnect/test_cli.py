"""The vetconnect command against a real server: demo world, tenants, users, audit verify, expected errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import _libpq
from vetconnect.cli import app
from vetconnect.settings import get_settings


@pytest.fixture
def cli_env(fresh_db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    monkeypatch.setenv("VETCONNECT_DEMO_SCALE", "small")
    monkeypatch.setenv("VETCONNECT_DEMO_ANIMANA_PORT", "0")  # tests run side by side: any free port
    monkeypatch.setenv(
        "VETCONNECT_DEMO_MODELS", "0"
    )  # models have their own tests; small data would not train
    # The demo's mail server and SMS simulator: any free port, the mailbox in the test's own directory.
    monkeypatch.setenv("VETCONNECT_SMTP_PORT", "0")
    monkeypatch.setenv("VETCONNECT_SMS_GATEWAY_URL", "http://127.0.0.1:0")
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def run(*args: str, input: str | None = None):  # noqa: A002
    result = CliRunner().invoke(app, list(args), input=input)
    return result


def test_demo_twice_then_list_tenants_and_users(cli_env):
    first = run("demo", "--no-ui")
    assert first.exit_code == 0, first.output
    assert "demo world created: 2 franchises, 5 practices" in first.output
    assert "• mail server on 127.0.0.1:" in first.output and "• messages dz-amstel: " in first.output
    mailbox = Path(os.environ["VETCONNECT_HOME"]) / "mail"
    assert list(mailbox.glob("*.eml")), mailbox  # the due messages were sent at start
    assert (
        "dz-amstel: clients in hybrid mode" in first.output
        and "dz-haarlem: agenda in native mode" in first.output
    )
    second = run("demo", "--no-ui")
    assert second.exit_code == 0
    assert "already present" in second.output and "in native mode" not in second.output  # switches are kept
    tenants = run("tenants", "list")
    assert "dz-amstel" in tenants.output
    assert "vp-zwolle" in tenants.output
    users = run("users", "list")
    for role in ("franchise_admin", "franchise_manager", "practice_manager", "veterinarian", "nurse",
                 "receptionist", "analyst"):  # fmt: skip
        assert role in users.output
    with psycopg.connect(_libpq(cli_env.admin_url)) as conn:
        assert conn.execute("SELECT count(*) FROM tenant WHERE kind = 'practice'").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM app_user").fetchone()[0] == 9
        # Clinical history came from the Animana simulator through the sync, and the marts were built from it.
        synced = conn.execute("SELECT count(DISTINCT practice_id) FROM client WHERE animana_id IS NOT NULL")
        assert synced.fetchone()[0] == 5
        assert conn.execute("SELECT count(DISTINCT practice_id) FROM mart_practice_day").fetchone()[0] == 5


def test_tenant_and_user_commands_create_what_they_say(cli_env):
    assert run("tenants", "add-franchise", "fx", "Franchise X").exit_code == 0
    added = run("tenants", "add-practice", "--franchise", "fx", "--city", "Delft", "px", "Praktijk X")
    assert added.exit_code == 0, added.output
    assert run("tenants", "add-department", "--practice", "px", "px-paard", "Paarden").exit_code == 0
    user = run("users", "add", "dokter", "--name", "Dokter X", "--role", "veterinarian@px",
               input="Zeer-Lang-Wachtwoord-7\nZeer-Lang-Wachtwoord-7\n")  # fmt: skip
    assert user.exit_code == 0, user.output
    with psycopg.connect(_libpq(cli_env.admin_url)) as conn:
        practice_id = conn.execute("SELECT id FROM tenant WHERE code = 'px'").fetchone()[0]
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relname LIKE %s",
            (f"%_p{practice_id}",),
        ).fetchone()[0]
        assert partitions == 7
        stored_hash = conn.execute("SELECT password_hash FROM app_user WHERE username = 'dokter'").fetchone()[
            0
        ]
        assert stored_hash.startswith("$argon2id$")


def test_admin_commands_link_an_identity_end_sessions_and_deactivate(cli_env):
    assert run("tenants", "add-franchise", "fx", "Franchise X").exit_code == 0
    assert run("tenants", "add-practice", "--franchise", "fx", "px", "Praktijk X").exit_code == 0
    assert run("users", "add", "dokter", "--name", "D", "--role", "veterinarian@px",
               "--password", "Zeer-Lang-Wachtwoord-7").exit_code == 0  # fmt: skip
    with psycopg.connect(_libpq(cli_env.admin_url)) as conn:
        user_id = conn.execute("SELECT id FROM app_user WHERE username = 'dokter'").fetchone()[0]
        for _ in range(2):
            conn.execute(
                "INSERT INTO user_session (user_id, token_sha256, method, idle_timeout, expires_at) VALUES "
                "(%s, gen_random_uuid()::text::bytea, 'password', '8 hours', now() + interval '12 hours')",
                (user_id,),
            )
    linked = run(
        "users", "link-oidc", "dokter", "--issuer", "https://idp.example/", "--email", "D@Example.nl"
    )
    assert linked.exit_code == 0, linked.output
    again = run("users", "link-oidc", "dokter", "--issuer", "https://idp.example/", "--email", "d@example.nl")
    assert again.exit_code == 1 and "already linked" in again.output
    assert "no user named 'nobody'" in run("users", "revoke-sessions", "nobody").output
    revoked = run("users", "revoke-sessions", "dokter", "--reason", "laptop stolen")
    assert revoked.exit_code == 0 and "2 session(s) of dokter ended" in revoked.output
    assert run("users", "deactivate", "dokter").exit_code == 0
    with psycopg.connect(_libpq(cli_env.admin_url)) as conn:
        assert conn.execute(
            "SELECT issuer, email FROM oidc_identity WHERE user_id = %s", (user_id,)
        ).fetchall() == [("https://idp.example/", "d@example.nl")]
        reasons = conn.execute(
            "SELECT revoked_reason FROM user_session WHERE user_id = %s", (user_id,)
        ).fetchall()
        assert reasons == [("laptop stolen",), ("laptop stolen",)]
        assert conn.execute("SELECT is_active FROM app_user WHERE id = %s", (user_id,)).fetchone() == (False,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenants", "add-practice", "--franchise", "nope", "x1", "X"), "no franchise with code 'nope'"),
        (("users", "add", "kees", "--name", "K", "--role", "veterinarian@nope", "--password", "Zeer-Lang-Wachtwoord-7"),
         "existing tenant code"),
        (("users", "add", "kees", "--name", "K", "--role", "veterinarian@fx", "--password", "kort"),
         "at least 12 characters"),
        (("tenants", "add-franchise", "fx", "Again"), "already taken"),
    ],
)  # fmt: skip
def test_expected_errors_are_one_line_without_traceback(cli_env, args, message):
    assert run("tenants", "add-franchise", "fx", "Franchise X").exit_code == 0
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_audit_verify_detects_an_altered_and_a_deleted_entry(cli_env):
    assert run("demo", "--no-ui").exit_code == 0
    intact = run("audit", "verify")
    assert intact.exit_code == 0
    assert "audit chain intact" in intact.output
    with psycopg.connect(_libpq(cli_env.admin_url), autocommit=True) as conn:
        practice_id, seq = conn.execute(
            "SELECT practice_id, max(seq) FROM audit_log GROUP BY practice_id ORDER BY practice_id LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE audit_log SET detail = '{\"rows\": 99}' WHERE practice_id = %s AND seq = 2",
            (practice_id,),
        )
    altered = run("audit", "verify")
    assert altered.exit_code == 2
    assert f"practice {practice_id}, entry 2: entry was altered" in altered.output
    with psycopg.connect(_libpq(cli_env.admin_url), autocommit=True) as conn:
        conn.execute("DELETE FROM audit_log WHERE practice_id = %s AND seq IN (3, %s)", (practice_id, seq))
    deleted = run("audit", "verify")
    assert deleted.exit_code == 2
    assert "entries 3..3 are missing" in deleted.output
    assert f"newest entries up to {seq} are missing" in deleted.output


def test_unreachable_database_url_is_one_clear_line(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port}/x")
    get_settings.cache_clear()
    result = run("tenants", "list")
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert (
        f"cannot reach PostgreSQL at postgresql+psycopg://nobody@127.0.0.1:{free_port}/x (DATABASE_URL)"
        in (result.output)
    )


def test_migrations_behind_is_reported_with_the_fix(server_url, monkeypatch):
    from tests.conftest import create_database, drop_database
    from warehouse.migrations import runner as migrate

    url = create_database(server_url, "vc_behind")
    try:
        migrate.upgrade(url, "0001")
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        result = run("tenants", "list")
        assert result.exit_code == 1
        assert "run `vetconnect db migrate`" in result.output
        assert run("db", "migrate").exit_code == 0
        assert run("tenants", "list").exit_code == 0
    finally:
        get_settings.cache_clear()
        drop_database(server_url, "vc_behind")


def test_start_and_stop_say_the_server_is_external(cli_env):
    assert "server is external" in run("db", "start").output
    assert "server is external" in run("db", "stop").output


class TestEmbeddedServer:
    """The embedded server's life cycle through the CLI, in a home of its own."""

    @pytest.fixture
    def home(self, tmp_path, monkeypatch):
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path / "home"))
        (tmp_path / "home").mkdir()
        get_settings.cache_clear()
        yield tmp_path / "home"
        run("db", "stop")
        get_settings.cache_clear()

    def test_start_status_url_stop(self, home):
        started = run("db", "start")
        assert started.exit_code == 0, started.output
        status = run("db", "status")
        assert "running" in status.output
        assert "schema: behind (at empty" in status.output
        url = run("db", "url").output.strip()
        with psycopg.connect(_libpq(url)) as conn:
            assert conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 170000
        assert run("db", "migrate").exit_code == 0
        assert "schema: current" in run("db", "status").output
        assert "stopped" in run("db", "stop").output
        assert run("db", "status").exit_code == 3

    def test_busy_tcp_port_is_named(self, home):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            result = run("db", "start", "--port", str(port))
        assert result.exit_code == 1
        assert f"TCP port {port} is busy" in result.output

    def test_data_dir_owned_by_another_server_is_named(self, home):
        assert run("db", "start").exit_code == 0
        assert run("db", "stop").exit_code == 0
        pgdata = Path(home) / "pgdata"
        # A live process that is not our PostgreSQL holds the data dir's postmaster.pid (this test process).
        lines = [str(os.getpid()), str(pgdata), "0", "5432", str(pgdata), "", "0 0", "ready"]
        (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        try:
            result = run("db", "start")
        finally:
            (pgdata / "postmaster.pid").unlink()
        assert result.exit_code == 1
        assert "is in use by another PostgreSQL server" in result.output


def test_missing_master_key_outside_demo_mode_is_a_startup_error_naming_it(cli_env, monkeypatch):
    monkeypatch.delenv("VETCONNECT_DEMO")
    monkeypatch.delenv("VETCONNECT_MASTER_KEY", raising=False)
    get_settings.cache_clear()
    assert run("tenants", "add-franchise", "fk", "Franchise K").exit_code == 0
    result = run("tenants", "add-practice", "--franchise", "fk", "pk", "Praktijk K")
    assert result.exit_code == 1
    assert "VETCONNECT_MASTER_KEY is not set" in result.output
    monkeypatch.setenv("VETCONNECT_MASTER_KEY", "bm90IDMyIGJ5dGVz")  # base64 of 12 bytes
    get_settings.cache_clear()
    wrong = run("tenants", "add-practice", "--franchise", "fk", "pk", "Praktijk K")
    assert "must decode to exactly 32 bytes" in wrong.output


def test_migrate_sets_the_app_role_password_and_the_app_signs_in_with_it(server_url, monkeypatch):
    """The role gets a SCRAM password and the app engine signs in with it (the embedded server trusts local
    connections, so this checks what is stored and sent, not that a wrong password is refused)."""
    from sqlalchemy import text

    from tests.conftest import create_database, drop_database

    url = create_database(server_url, "vc_password")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("VETCONNECT_APP_DB_PASSWORD", "Rol-Wachtwoord-42")
    get_settings.cache_clear()
    try:
        result = run("db", "migrate")
        assert result.exit_code == 0, result.output
        assert "vetconnect_app password set" in result.output
        with psycopg.connect(_libpq(url)) as conn:
            stored = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'vetconnect_app'"
            ).fetchone()[0]
        assert stored.startswith("SCRAM-SHA-256$")
        from vetconnect.runtime import get_runtime

        engine = get_runtime().app_engine
        assert engine.url.password == "Rol-Wachtwoord-42"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == "vetconnect_app"
        engine.dispose()
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            conn.execute("ALTER ROLE vetconnect_app PASSWORD NULL")
        get_settings.cache_clear()
        drop_database(server_url, "vc_password")
