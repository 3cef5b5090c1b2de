"""``vetconnect schedule roster`` and ``vetconnect reminders generate``: the schedule and reminder data that
Animana cannot deliver, kept in VetConnect as the system of record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from vetconnect.runtime import Runtime, migrated_runtime

schedule_app = typer.Typer(help="Rosters: the shifts utilisation is measured against.", no_args_is_help=True)
reminders_app = typer.Typer(help="Vaccination reminders from the vaccination record.", no_args_is_help=True)


class CliError(ValueError):
    pass


@contextmanager
def _errors() -> Iterator[None]:
    # Imported here: vetconnect.cli imports this module to mount it.
    from vetconnect.cli import expected_errors
    from warehouse.scheduling.rosters import RosterError

    with expected_errors(CliError, RosterError):
        yield


def _practices(runtime: Runtime, codes: list[str], every: bool, purpose: str) -> list[tuple[int, str, str]]:
    """(id, code, time zone) of the named practices, or of every live one: one audited system read."""
    from sqlalchemy import text

    from warehouse.kernel.tenancy import system_session

    if not codes and not every:
        raise CliError("name a practice (--practice CODE) or use --all")
    with system_session(runtime.admin_engine, reason=f"{purpose}: practices {codes or 'all'}") as session:
        rows = session.execute(
            text(
                "SELECT id, code, timezone FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL "
                "AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[]))) ORDER BY code"
            ),
            {"codes": None if every else codes},
        ).all()
    if unknown := sorted(set(codes) - {r.code for r in rows}):
        raise CliError(f"no practice with code(s) {', '.join(unknown)} (see `vetconnect tenants list`)")
    return [(r.id, r.code, r.timezone) for r in rows]


@schedule_app.command("roster")
def roster(
    practice: Annotated[str, typer.Option("--practice", "-p", help="Practice code")],
    week: Annotated[
        list[str],
        typer.Option(help="Weekly shift, local time, e.g. 'mon-fri 08:00-18:30' (repeat the option)"),
    ],
    first_day: Annotated[dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day")],
    last_day: Annotated[dt.datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (inclusive)")],
    resource: Annotated[
        list[str] | None, typer.Option(help="Resource name (repeat); default: every active resource")
    ] = None,
) -> None:
    """Create recurring weekly shifts for a practice's resources over a date range. Days on which a resource
    already has a shift are left alone, so running it again only fills gaps."""
    from sqlalchemy import text

    from vetconnect.cli import out
    from warehouse.kernel.tenancy import AccessContext, tenant_session
    from warehouse.scheduling.rosters import create_roster, parse_week, scheduled_by_animana

    with _errors():
        pattern = parse_week(week)
        runtime = migrated_runtime()
        ((practice_id, code, _),) = _practices(runtime, [practice], False, "roster")
        with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
            rows = session.execute(
                text("SELECT id, name FROM resource WHERE practice_id = :p AND active ORDER BY name"),
                {"p": practice_id},
            ).all()
            by_name = {r.name: r.id for r in rows}
            if unknown := sorted(set(resource or []) - set(by_name)):
                raise CliError(f"{code} has no active resource named {', '.join(map(repr, unknown))}")
            ids = [by_name[n] for n in resource] if resource else list(by_name.values())
            created = create_roster(
                session, practice_id=practice_id, resource_ids=ids, week=pattern,
                first_day=first_day.date(), last_day=last_day.date(),
            )  # fmt: skip
            from_animana = scheduled_by_animana(session, practice_id, ids)
        out.print(f"{code}: {created} shift(s) created for {len(ids)} resource(s)")
        if from_animana:
            out.print(f"{code}: left to Animana's werkrooster (synced): {', '.join(from_animana)}")


@reminders_app.command("generate")
def generate(
    practice: Annotated[
        list[str] | None, typer.Option("--practice", "-p", help="Practice code (repeat)")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every live practice")] = False,
) -> None:
    """Create the vaccination reminders that are due to be sent (and close those renewed since). Safe to rerun."""
    from vetconnect.cli import out
    from warehouse.kernel.tenancy import AccessContext, tenant_session
    from warehouse.records.reminders import generate_vaccination_reminders

    with _errors():
        runtime = migrated_runtime()
        for practice_id, code, timezone in _practices(runtime, practice or [], every, "reminders"):
            with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
                run = generate_vaccination_reminders(
                    session, practice_id, today=dt.datetime.now(ZoneInfo(timezone)).date()
                )
            out.print(f"{code}: {run.created} reminder(s) created, {run.closed} closed")
