"""The ``vetconnect`` command: database server, migrations, demo world, tenants, users, audit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.animana import AnimanaClient, AnimanaError
from connectors.animana.cli import animana_app
from connectors.animana.sync.links import LinkError, link_practice
from vetconnect import pgserver
from vetconnect.animana_cli import sync_app
from vetconnect.backup_cli import backup_app
from vetconnect.devices_cli import devices_app
from vetconnect.gdpr_cli import gdpr_app
from vetconnect.health_cli import health
from vetconnect.integration_cli import integration_app
from vetconnect.messages_cli import messages_app
from vetconnect.models_cli import models_app
from vetconnect.runtime import SetupError, get_runtime, migrated_runtime
from vetconnect.schedule_cli import reminders_app, schedule_app
from vetconnect.settings import MissingSetting, get_settings
from warehouse.migrations import runner as migrate
from warehouse.security.accounts import AccountError
from warehouse.security.passwords import WeakPassword
from warehouse.tenants.admin import TenantError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(help="VetConnect: operations hub for veterinary practices.", no_args_is_help=True)
db_app = typer.Typer(help="The PostgreSQL server and schema.", no_args_is_help=True)
tenants_app = typer.Typer(help="Franchises, practices, departments.", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(devices_app, name="devices")
app.add_typer(sync_app, name="sync")
app.add_typer(animana_app, name="animana")
app.add_typer(integration_app, name="integration")
app.add_typer(models_app, name="models")
app.add_typer(schedule_app, name="schedule")
app.add_typer(reminders_app, name="reminders")
app.add_typer(gdpr_app, name="gdpr")
app.command("health")(health)
app.add_typer(backup_app, name="backup")
app.add_typer(messages_app, name="messages")

out = Console()
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def expected_errors(*also: type[Exception]) -> Iterator[None]:
    """Expected conditions (the set-up's, and a sub-command's own ``also``) end the command with one line and
    exit code 1, never a traceback."""
    try:
        yield
    except (
        SetupError, pgserver.ServerError, migrate.MigrationsBehind, MissingSetting, TenantError, AccountError,
        WeakPassword, *also,
    ) as exc:  # fmt: skip
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _external_notice(action: str) -> bool:
    runtime = get_runtime()
    if runtime.external:
        out.print(f"DATABASE_URL is set: the server is external, so VetConnect does not {action} it.")
        return True
    return False


# --- db -------------------------------------------------------------------------------------------------


@db_app.command("start")
def db_start(
    port: Annotated[int | None, typer.Option(help="Also listen on 127.0.0.1:PORT (TCP)")] = None,
) -> None:
    """Start the embedded PostgreSQL server (initialising it on first use)."""
    with expected_errors():
        if _external_notice("start"):
            return
        settings = get_settings()
        info = pgserver.start(settings.pgdata, tcp_port=port, wal_archive=settings.wal_archive)
        out.print(f"PostgreSQL running (pid {info.pid}), data in {info.pgdata}")
        out.print(info.url(), highlight=False, soft_wrap=True)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    with expected_errors():
        if _external_notice("stop"):
            return
        stopped = pgserver.stop(get_settings().pgdata)
        out.print("PostgreSQL stopped." if stopped else "PostgreSQL was not running.")


@db_app.command("status")
def db_status() -> None:
    """Is the server up, and is the schema current?"""
    with expected_errors():
        runtime = get_runtime()
        if not runtime.external:
            info = pgserver.status(get_settings().pgdata)
            if info is None:
                out.print(f"embedded PostgreSQL: stopped (data dir {get_settings().pgdata})")
                raise typer.Exit(3)
            out.print(f"embedded PostgreSQL: running, pid {info.pid}, data dir {info.pgdata}")
        else:
            _ = runtime.reachable_admin_url
            out.print("external PostgreSQL (DATABASE_URL): reachable")
        current, head = migrate.current_revision(runtime.admin_url), migrate.head_revision()
        state = "current" if current == head else f"behind (at {current or 'empty'}, code needs {head})"
        out.print(f"schema: {state}")


@db_app.command("url")
def db_url() -> None:
    """Print the admin (superuser) URL of the database."""
    with expected_errors():
        print(get_runtime().admin_url)


@db_app.command("psql")
def db_psql() -> None:
    """Open psql on the database."""
    with expected_errors():
        url = get_runtime().admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        os.execv(str(pgserver.psql_path()), [str(pgserver.psql_path()), url])


@db_app.command("migrate")
def db_migrate() -> None:
    """Upgrade the schema to the newest migration."""
    with expected_errors():
        runtime = get_runtime()
        url = runtime.reachable_admin_url
        migrate.upgrade(url)
        if runtime.settings.app_db_password is not None:
            migrate.set_app_role_password(url, runtime.settings.app_db_password.get_secret_value())
            out.print("vetconnect_app password set from VETCONNECT_APP_DB_PASSWORD")
        out.print(f"schema at {migrate.current_revision(url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (``base`` removes everything)."""
    with expected_errors():
        url = get_runtime().reachable_admin_url
        migrate.downgrade(url, revision)
        out.print(f"schema at {migrate.current_revision(url) or 'base'}")


# --- demo ------------------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Load the demo world and exit")] = False,
    port: Annotated[int, typer.Option(help="Port of the web app")] = 8501,
    animana_port: Annotated[
        int,
        typer.Option(
            envvar="VETCONNECT_DEMO_ANIMANA_PORT",
            help="Port of the Animana simulator beside the app (0: any free)",
        ),
    ] = 8765,
) -> None:
    """Start the database, migrate, load the demo world, and open the app with Animana (the simulator) beside it."""
    from vetconnect.demo import DEMO_PASSWORD, build_demo_world
    from warehouse.kernel.tenancy import system_session

    os.environ.setdefault("VETCONNECT_DEMO", "1")
    get_settings.cache_clear()
    with expected_errors(), ExitStack() as beside_the_app:
        runtime = get_runtime()
        out.print("• database: " + ("external (DATABASE_URL)" if runtime.external else "embedded PostgreSQL"))
        migrate.upgrade(runtime.reachable_admin_url)
        out.print(f"• schema at {migrate.current_revision(runtime.admin_url)}")
        with system_session(runtime.admin_engine, reason="demo world set-up") as session:
            summary = build_demo_world(session, master_key=runtime.master_key())
        verb = "created" if summary.created else "already present"
        out.print(f"• demo world {verb}: {summary.franchises} franchises, {summary.practices} practices")
        animana = None
        if os.environ.get("VETCONNECT_DEMO_ANIMANA", "1") != "0":
            # Clinical history arrives the way it will in production: from Animana, through the sync pipeline.
            from vetconnect.animana_cli import demo_sync
            from vetconnect.demo_animana import demo_animana, set_demo_modes

            animana = beside_the_app.enter_context(
                demo_animana(runtime.admin_engine, summary.practice_codes, summary.anchor, port=animana_port)
            )
            out.print(
                f"• Animana simulator on {animana.sim.base_url}: loading {len(animana.practices)} practices"
            )
            with animana.client() as client:
                demo_sync(runtime.app_engine, client, animana.practices, master_key=runtime.master_key())
            if summary.created:  # later runs keep the modes people switched since
                for code, module, mode in set_demo_modes(runtime.app_engine, runtime.admin_engine):
                    out.print(f"• {code}: {module} in {mode} mode")
            from vetconnect.demo import AMSTERDAM, analyze, roster_and_remind

            # Statistics for the synced tables first: the rosters' and reminders' queries were planned for
            # near-empty tables otherwise (as the marts' were, see `analyze`).
            analyze(runtime.admin_engine)
            anchor_day = summary.anchor.astimezone(AMSTERDAM).date()
            for upkeep in roster_and_remind(
                runtime.app_engine, runtime.admin_engine, summary.practice_codes, open_day=anchor_day
            ):
                out.print(
                    f"• {upkeep.code}: {upkeep.shifts_created} roster shift(s) over the synced agenda, "
                    f"{upkeep.reminders.created} vaccination reminder(s) created, {upkeep.reminders.closed} closed"
                )
            analyze(runtime.admin_engine, ("staff_shift", "reminder"))  # what the rosters and reminders added
        else:
            from vetconnect.demo import analyze

            analyze(runtime.admin_engine)
        # Messages to owners: the local mail server and SMS simulator beside the app, the due ones sent once now.
        from vetconnect.demo_messages import (
            demo_messaging,
            describe,
            grant_demo_consents,
            practice_ids,
            send_due,
        )

        messaging = beside_the_app.enter_context(demo_messaging(get_settings()))
        out.print(f"• mail server on {messaging.smtp_host}:{messaging.smtp_port} (mailbox {messaging.mailbox}), "
                  f"SMS simulator on {messaging.sms_url}")  # fmt: skip
        messaged = practice_ids(runtime.admin_engine, summary.practice_codes)
        grant_demo_consents(runtime.app_engine, messaged)
        for line in describe(
            send_due(runtime.app_engine, messaged, messaging, master_key=runtime.master_key())
        ):
            out.print(line)
        from warehouse.marts.refresh import refresh_all

        refreshed = refresh_all(runtime.app_engine, runtime.admin_engine)
        out.print(f"• dashboards' marts refreshed for {len(refreshed)} practice(s)")
        if summary.created and os.environ.get("VETCONNECT_DEMO_MODELS", "1") != "0":
            # First run only: later runs keep the promoted models (retrain with `vetconnect models train`).
            from vetconnect.models_cli import train_cmd

            out.print("• training the next-action and no-show models per franchise (one JSON line each)")
            train_cmd(franchise=None, kind=None, promote=True, workers=2)
        table = Table(title=f"Demo accounts (password for all: {DEMO_PASSWORD})")
        for column in ("user", "name", "role", "at"):
            table.add_column(column)
        for username, (name, role, codes) in summary.accounts.items():
            table.add_row(username, name, role, ", ".join(codes))
        out.print(table)
        out.print(
            "• admin, franchise, franchise2 and manager need two-step sign-in: their first sign-in shows a QR "
            "code to scan with any authenticator app (or its key to type in), then asks for the 6-digit code"
        )
        if no_ui:
            return
        if animana is not None:
            from vetconnect.demo_animana import PUSH_EVERY_S, SYNC_EVERY_S, WritebackLoop

            loop = WritebackLoop(runtime.app_engine, animana, master_key=runtime.master_key(), console=out)
            beside_the_app.enter_context(loop.in_background())
            out.print(
                f"• Animana stays up on {animana.sim.base_url} while the app runs: local changes are written back "
                f"every {PUSH_EVERY_S:.0f} s (hybrid) or at once (animana mode), Animana's changes synced every "
                f"{SYNC_EVERY_S:.0f} s. Edit a record as an Animana user: curl -X POST {animana.sim.base_url}/_sim/edit "
                """-d '{"practice": 1001, "resource": "relations", "id": 1, "fields": {"last_name": "Jansen"}}'"""
            )
        from vetconnect.demo_messages import SEND_EVERY_S, MessagesLoop

        beside_the_app.enter_context(
            MessagesLoop(runtime.app_engine, messaged, messaging, master_key=runtime.master_key(), console=out)
            .in_background()
        )  # fmt: skip
        out.print(f"• due messages are queued and sent every {SEND_EVERY_S:.0f} s; the Messages page shows them "
                  "and, in the demo, the mailbox")  # fmt: skip
        root = Path(__file__).resolve().parents[1]
        out.print(f"• opening the app on http://localhost:{port}")
        # dashboard/asgi.py: the app plus its session-cookie route; cwd: Streamlit reads .streamlit/config.toml there.
        subprocess.run(
            [sys.executable, "-m", "streamlit", "run", str(root / "dashboard" / "asgi.py"), "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            check=False, cwd=root,
        )  # fmt: skip


# --- tenants ---------------------------------------------------------------------------------------------


def _system(reason: str):  # noqa: ANN202 - context manager passthrough
    from warehouse.kernel.tenancy import system_session

    return system_session(migrated_runtime().admin_engine, reason=reason)


@tenants_app.command("add-franchise")
def tenants_add_franchise(code: str, name: str) -> None:
    """Add a franchise."""
    from warehouse.tenants.admin import add_franchise

    with expected_errors(), _system(f"cli: add franchise {code}") as session:
        tenant = add_franchise(session, code=code, name=name)
        out.print(f"franchise {tenant.code} created (id {tenant.id})")


@tenants_app.command("add-practice")
def tenants_add_practice(
    franchise: Annotated[str, typer.Option(help="Code of the franchise")],
    code: str,
    name: str,
    city: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add a practice to a franchise (creates its partitions, audit chain and data key)."""
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.tenants.admin import add_practice

    with expected_errors(), _system(f"cli: add practice {code}") as session:
        franchise_id = tenant_id_by_code(session, franchise)
        if franchise_id is None:
            raise TenantError(f"no franchise with code {franchise!r}")
        tenant = add_practice(session, franchise_id=franchise_id, code=code, name=name, city=city,
                              master_key=get_runtime().master_key())  # fmt: skip
        out.print(f"practice {tenant.code} created (id {tenant.id})")


@tenants_app.command("add-department")
def tenants_add_department(
    practice: Annotated[str, typer.Option(help="Code of the practice")], code: str, name: str
) -> None:
    """Add a department to a practice."""
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.tenants.admin import add_department

    with expected_errors(), _system(f"cli: add department {code}") as session:
        practice_id = tenant_id_by_code(session, practice)
        if practice_id is None:
            raise TenantError(f"no practice with code {practice!r}")
        tenant = add_department(session, practice_id=practice_id, code=code, name=name)
        out.print(f"department {tenant.code} created (id {tenant.id})")


@tenants_app.command("list")
def tenants_list() -> None:
    """List every franchise, practice and department."""
    from warehouse.tenants.admin import list_tenants

    with expected_errors(), _system("cli: list tenants") as session:
        table = Table()
        for column in ("id", "kind", "code", "name", "city"):
            table.add_column(column)
        for t in list_tenants(session):
            indent = {"franchise": "", "practice": "  ", "department": "    "}[t.kind]
            table.add_row(str(t.id), t.kind, indent + t.code, t.name, t.city or "")
        out.print(table)


@tenants_app.command("link-animana")
def tenants_link_animana(
    code: Annotated[str, typer.Argument(help="Code of the practice")],
    animana_id: Annotated[int, typer.Argument(help="The practice's id in Animana")],
) -> None:
    """Link a practice to its Animana practice: the sync mirrors it from then on. The id is checked against the
    Animana API (VETCONNECT_ANIMANA_*), and may not be linked to another practice."""
    with expected_errors(LinkError, AnimanaError):
        runtime = migrated_runtime()
        with AnimanaClient.from_env() as client:
            link_practice(runtime.admin_engine, client, code, animana_id)
        out.print(f"practice {code} linked to Animana practice {animana_id}")


# --- users -----------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: str,
    name: Annotated[str, typer.Option(help="Full name")],
    role: Annotated[
        list[str], typer.Option(help="ROLE@TENANT_CODE, repeatable (e.g. veterinarian@dz-amstel)")
    ],
    email: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Add a staff account with one or more roles."""
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.security.accounts import add_user

    with expected_errors(), _system(f"cli: add user {username}") as session:
        memberships = []
        for spec in role:
            role_name, _, code = spec.partition("@")
            tenant_id = tenant_id_by_code(session, code) if code else None
            if tenant_id is None:
                raise AccountError(f"--role {spec!r}: expected ROLE@TENANT_CODE with an existing tenant code")
            memberships.append((tenant_id, role_name))
        user = add_user(session, username=username, full_name=name, password=password, memberships=memberships,
                        email=email)  # fmt: skip
        out.print(f"user {user.username} created (id {user.id})")


@users_app.command("list")
def users_list() -> None:
    """List staff accounts and their roles."""
    from warehouse.security.accounts import list_users

    with expected_errors(), _system("cli: list users") as session:
        table = Table()
        for column in ("id", "user", "name", "roles"):
            table.add_column(column)
        for u in list_users(session):
            table.add_row(str(u.id), u.username, u.full_name, ", ".join(f"{r}@{c}" for c, r in u.memberships))
        out.print(table)


def _user_id(session: Session, username: str) -> int:
    from sqlalchemy import select

    from warehouse.schema.tenancy import AppUser

    user_id = session.scalar(select(AppUser.id).where(AppUser.username == username.strip().lower()))
    if user_id is None:
        raise AccountError(f"no user named {username!r} (see `vetconnect users list`)")
    return user_id


@users_app.command("link-oidc")
def users_link_oidc(
    username: str,
    issuer: Annotated[str, typer.Option(help="The provider's issuer URL, exactly as in the ID token's iss")],
    subject: Annotated[str | None, typer.Option(help="The identity's subject (sub)")] = None,
    email: Annotated[str | None, typer.Option(help="Or: the identity's verified e-mail address")] = None,
) -> None:
    """Link an account to an external (OIDC) identity, so it can sign in with the provider's button."""
    from warehouse.security.oidc import link_identity

    with expected_errors(), _system(f"cli: link OIDC identity to {username}") as session:
        link_identity(
            session, user_id=_user_id(session, username), issuer=issuer, subject=subject, email=email
        )
        out.print(f"{username} linked to {subject or email} at {issuer.strip()}")


@users_app.command("revoke-sessions")
def users_revoke_sessions(
    username: str,
    reason: Annotated[
        str, typer.Option(help="Shown to the user on the sign-in page")
    ] = "ended by an administrator",
) -> None:
    """Sign a user out of every browser at once (their next page load asks them to sign in)."""
    from warehouse.security.sessions import revoke_sessions

    with expected_errors(), _system(f"cli: revoke sessions of {username}") as session:
        ended = revoke_sessions(session, _user_id(session, username), reason=reason)
        out.print(f"{ended} session(s) of {username} ended")


@users_app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Switch an account off: sign-in is refused and its sessions end at once."""
    from warehouse.security.accounts import deactivate_user

    with expected_errors(), _system(f"cli: deactivate {username}") as session:
        deactivate_user(session, _user_id(session, username))
        out.print(f"{username} deactivated")


# --- audit -----------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every practice's audit hash chain; exit 2 when anything was altered or removed."""
    from warehouse.kernel.audit import verify_chain

    with expected_errors(), _system("cli: audit verify") as session:
        report = verify_chain(session)
    if report.ok:
        out.print(
            f"audit chain intact: {report.entries_checked} entries in {report.practices_checked} practices"
        )
        return
    for problem in report.problems:
        err.print(f"practice {problem.practice_id}, entry {problem.seq}: {problem.problem}", highlight=False)
    err.print(f"[red]audit chain broken:[/red] {len(report.problems)} problem(s)")
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
