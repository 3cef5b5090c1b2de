"""``vetconnect gdpr erase`` and ``vetconnect gdpr purge``: the right to erasure and the retention purge from the
shell (``warehouse.privacy``).

``erase`` acts as the practice manager of the practice it names (the role that may erase; ``user_id`` empty, like
every other CLI write; the operator at the shell holds the database's keys): the service checks that permission,
writes the audit entry, and a practice whose clients Animana still owns gets the pseudonym there as the
transaction commits (the gateway, as in the app). ``purge`` is the system job (the daily Dagster schedule runs the same function)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from vetconnect.runtime import Runtime, migrated_runtime

gdpr_erase_app = typer.Typer(help="GDPR: a client's personal data.", no_args_is_help=True)


class CliError(ValueError):
    pass


def out() -> Console:
    return Console()


@contextmanager
def _errors() -> Iterator[None]:
    # Imported here: vetconnect.cli imports this module to mount it.
    from vetconnect.cli import expected_errors
    from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
    from warehouse.kernel.errors import DomainError
    from warehouse.security.permissions import NotPermitted

    with expected_errors(CliError, DomainError, NotPermitted, UpstreamRefused, UpstreamUnavailable):
        yield


def practice_id_of(runtime: Runtime, code: str) -> int:
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.kernel.tenancy import system_session

    with system_session(runtime.admin_engine, reason=f"gdpr cli: practice {code}") as session:
        practice_id = tenant_id_by_code(session, code, "practice")
    if practice_id is None:
        raise CliError(f"no practice with code {code} (see `vetconnect tenants list`)")
    return practice_id


@gdpr_erase_app.command("erase")
def erase_cmd(
    practice: Annotated[str, typer.Option("--practice", "-p", help="Practice code")],
    client: Annotated[int, typer.Option("--client", "-c", help="The client's id at the practice")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Erase (without it: only say what would be erased)")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the erasure)")] = None,
) -> None:
    """Erase a client's personal data; their animals' records stay, pseudonymised, for the retention period."""
    from warehouse.integration.gateway import install_write_through
    from warehouse.kernel import formatting
    from warehouse.kernel.tenancy import AccessContext, tenant_session
    from warehouse.privacy.erasure import DEFAULT_REASON, erase_client, erasure_preview
    from warehouse.security.permissions import Actor

    with _errors():
        runtime = migrated_runtime()
        practice_id = practice_id_of(runtime, practice)
        context = AccessContext.for_practices([practice_id])
        with tenant_session(runtime.app_engine, context) as session:
            preview = erasure_preview(session, practice_id, client)
        if preview.refusal:
            raise CliError(preview.refusal)
        what = (
            f"{preview.name} (client {client} at {practice}): name, address, postcode, city, e-mail, phone and "
            f"IBAN are erased everywhere; {preview.animals} animal(s), {preview.visits} visit(s) and "
            f"{preview.invoices} invoice(s) stay, pseudonymised, until {formatting.date(preview.retention_until)}."
        )
        if not yes:
            raise CliError(f"not erased without --yes. It would erase {what}")
        operator = Actor.at(None, practice_id, {"practice_manager"})
        master_key = runtime.master_key()
        with tenant_session(runtime.app_engine, context) as session:
            install_write_through(session, runtime.upstream_sender, master_key=master_key)
            result = erase_client(
                session, operator, practice_id, client, master_key=master_key, reason=reason or DEFAULT_REASON
            )
        out().print(
            f"Erased: client {client} is now 'Erased client {result.pseudonym}'; records kept until "
            f"{formatting.date(result.retention_until)}.",
            highlight=False,
        )


@gdpr_erase_app.command("purge")
def purge_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be purged; delete nothing")
    ] = False,
) -> None:
    """Delete the records of erased clients whose retention period has ended (what the daily job does)."""
    from warehouse.kernel.tenancy import system_session
    from warehouse.privacy.retention import purge_due

    with _errors():
        runtime = migrated_runtime()
        with system_session(runtime.admin_engine, reason="gdpr: retention purge (cli)") as session:
            report = purge_due(session, dt.datetime.now(dt.UTC), dry_run=dry_run)
        console = out()
        verb = "Would purge" if dry_run else "Purged"
        console.print(f"{verb} the records of {len(report.erasures)} erased client(s).")
        if report.rows:
            table = Table("table", "rows")
            for name, count in report.rows.items():
                table.add_row(name, str(count))
            console.print(table)


@gdpr_erase_app.command("retention")
def retention_cmd(
    franchise: Annotated[str, typer.Option("--franchise", "-f", help="Franchise code")],
    years: Annotated[
        int | None, typer.Option("--years", help="Keep an erased client's records this many years (1-30)")
    ] = None,
) -> None:
    """Show, or with --years set, how long the franchise keeps an erased client's records after the last activity
    (erasures made from now on; audited at each of its practices)."""
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.kernel.tenancy import system_session
    from warehouse.privacy.retention import set_retention_years

    with _errors():
        runtime = migrated_runtime()
        reason = f"gdpr cli: retention of franchise {franchise}" + (
            "" if years is None else f" to {years} years"
        )
        with system_session(runtime.admin_engine, reason=reason) as session:
            franchise_id = tenant_id_by_code(session, franchise, "franchise")
            if franchise_id is None:
                raise CliError(f"no franchise with code {franchise} (see `vetconnect tenants list`)")
            if years is None:
                kept = session.scalar(
                    text("SELECT retention_years FROM tenant WHERE id = :f"), {"f": franchise_id}
                )
                out().print(
                    f"{franchise} keeps an erased client's records {kept} years after the last activity."
                )
                return
            before = set_retention_years(session, franchise_id, years)
        out().print(f"{franchise} keeps an erased client's records {years} years after the last activity "
                    f"(was {before}); erasures from now on get it.")  # fmt: skip
