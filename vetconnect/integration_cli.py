"""``vetconnect integration``: the two-way Animana integration from the shell — where each practice × module
stands, switching a module's mode, pushing the write-back outbox, the conflict queue and dead letters.

The operator at the shell already holds the database's keys, so the commands act as a franchise admin of the
practices they name (``user_id`` empty, like every other CLI write); the services still check that permission
and write their audit entries. Practice codes are resolved through one audited system read; everything else
runs under the practices' own RLS context, as the app does."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vetconnect.runtime import Runtime, migrated_runtime

if TYPE_CHECKING:
    from connectors.animana.writeback.dispatcher import PushReport
    from warehouse.security.permissions import Actor

integration_app = typer.Typer(
    help="Two-way Animana: modes per module, write-back outbox, conflicts, dead letters.",
    no_args_is_help=True,
)


def out() -> Console:
    """A console per use: rich reads the terminal width (COLUMNS) when one is made, not at import."""
    return Console()


PracticesOption = Annotated[
    list[str] | None, typer.Option("--practice", "-p", help="Practice code (repeatable; default: all)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON array instead of a table")]
SIDES = ("local", "animana")


class CliError(ValueError):
    pass


@contextmanager
def _errors() -> Iterator[None]:
    # Imported here: vetconnect.cli imports this module to mount it.
    from connectors.animana import AnimanaError
    from vetconnect.cli import expected_errors
    from warehouse.integration.errors import IntegrationError
    from warehouse.security.permissions import NotPermitted

    with expected_errors(CliError, IntegrationError, NotPermitted, AnimanaError, LookupError):
        yield


def _practices(runtime: Runtime, codes: Sequence[str] | None) -> dict[int, str]:
    """Practice id → code of the named live practices, or of all of them."""
    from sqlalchemy import text

    from warehouse.kernel.tenancy import system_session

    reason = f"integration cli: practices {', '.join(codes) if codes else 'all'}"
    with system_session(runtime.admin_engine, reason=reason) as session:
        rows = session.execute(
            text(
                "SELECT id, code FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL "
                "AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[]))) ORDER BY code"
            ),
            {"codes": list(codes) if codes else None},
        ).all()
    if unknown := sorted(set(codes or ()) - {r.code for r in rows}):
        raise CliError(f"no practice with code(s) {', '.join(unknown)} (see `vetconnect tenants list`)")
    return {r.id: r.code for r in rows}


def _operator(practice_ids: Sequence[int]) -> Actor:
    from warehouse.security.permissions import Actor

    return Actor(None, {p: frozenset({"franchise_admin"}) for p in practice_ids})


def _session(runtime: Runtime, practice_ids: Sequence[int]):  # noqa: ANN202 - context manager passthrough
    from warehouse.kernel.tenancy import AccessContext, tenant_session

    return tenant_session(runtime.app_engine, AccessContext.for_practices(practice_ids))


def _when(moment: Any) -> str:
    from warehouse.kernel.formatting import date_time

    return date_time(moment) if moment else "—"


def _seconds(value: float | None) -> str:
    from warehouse.kernel.formatting import number

    if value is None:
        return "—"
    if value < 120:
        return f"{number(value)} s"
    return f"{number(value / 60)} min" if value < 7200 else f"{number(value / 3600, 1)} h"


# --- status and modes ------------------------------------------------------------------------------------


@integration_app.command("status")
def status_cmd(practice: PracticesOption = None, as_json: JsonOption = False) -> None:
    """Per practice × module: mode, last sync, outbox depth and oldest entry, dead letters, open conflicts."""
    from warehouse.integration.status import integration_status, status_frame

    with _errors():
        runtime = migrated_runtime()
        ids = _practices(runtime, practice)
        with _session(runtime, list(ids)) as session:
            statuses = integration_status(session, list(ids))
    if as_json:
        typer.echo(status_frame(statuses).write_json())
        return
    table = Table(title="Animana integration")
    for column in ("practice", "module", "mode", "last sync", "sync lag", "outbox", "oldest pending",
                   "dead letters", "conflicts", "attention"):  # fmt: skip
        table.add_column(
            column, justify="right" if column in ("outbox", "dead letters", "conflicts") else "left"
        )
    for s in statuses:
        table.add_row(
            s.practice_code + ("" if s.linked else " (not linked)"), s.module_label, s.mode, _when(s.last_sync),
            _seconds(s.sync_lag_s), str(s.outbox_depth), _when(s.oldest_pending), str(s.dead_letters),
            str(s.open_conflicts), "; ".join(s.attention),
        )  # fmt: skip
    out().print(table)


@integration_app.command("mode")
def mode_cmd(
    practice: Annotated[str, typer.Option("--practice", "-p", help="Practice code")],
    module: Annotated[str, typer.Option("--module", "-m", help="clients, agenda, records or invoices")],
    mode: Annotated[
        str | None, typer.Argument(help="animana, hybrid or native; omit to show the current")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Switch without asking for confirmation")] = False,
) -> None:
    """Show a module's mode at a practice, or switch it (confirmed and audited)."""
    from warehouse.integration.modes import MODE_LABELS, mode_of, set_mode
    from warehouse.schema.tenancy import MODULES

    with _errors():
        if module not in MODULES:
            raise CliError(f"unknown module {module!r}; choose one of {', '.join(MODULES)}")
        runtime = migrated_runtime()
        ((practice_id, code),) = _practices(runtime, [practice]).items()
        with _session(runtime, [practice_id]) as session:
            current = mode_of(session, practice_id, module)
        if mode is None:
            out().print(f"{code} {module}: {current} — {MODE_LABELS[current]}")
            return
        if mode == current:
            out().print(f"{code} {module} is already {mode}; nothing changed")
            return
        if not yes and not typer.confirm(
            f"Switch {module} of {code} from {current} to {MODE_LABELS.get(mode, mode)}?"
        ):
            out().print("nothing changed")
            raise typer.Exit(1)
        with _session(runtime, [practice_id]) as session:
            previous = set_mode(
                session, _operator([practice_id]), practice_id=practice_id, module=module, mode=mode,
                confirmed=True,
            )  # fmt: skip
        out().print(f"{code} {module}: {previous} → {mode}")


# --- write-back ------------------------------------------------------------------------------------------


@integration_app.command("push")
def push_cmd(
    practice: PracticesOption = None,
    max_entries: Annotated[int, typer.Option("--max", min=1, help="At most N entries per practice")] = 10_000,
) -> None:
    """Send the due write-back entries of linked practices to Animana once (the Dagster sensor does this
    continuously); prints what was sent, retried later, waited on a parent, is stale, or became a dead letter."""
    from connectors.animana import AnimanaClient
    from connectors.animana.sync.links import linked_practices
    from connectors.animana.writeback.dispatcher import push
    from warehouse.integration.due import practices_with_due_entries

    with _errors():
        runtime = migrated_runtime()
        practices = linked_practices(runtime.admin_engine, practice)
        if not practices:
            out().print("no practice is linked to Animana (tenant.animana_practice_id)")
            return
        with _session(runtime, [p.practice_id for p in practices]) as session:
            due = {d.practice_id: d.due for d in practices_with_due_entries(session)}
        reports: list[PushReport] = []
        columns = (
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with AnimanaClient.from_env() as client, Progress(*columns, console=out()) as progress:
            for p in practices:
                task = progress.add_task(p.code, total=min(due.get(p.practice_id, 0), max_entries) or None)
                reports.append(
                    push(
                        runtime.app_engine, client, p, master_key=runtime.master_key(), max_entries=max_entries,
                        after_send=lambda _entry, task=task: progress.advance(task),
                    )
                )  # fmt: skip
                progress.update(
                    task,
                    total=progress.tasks[task].completed or 1,
                    completed=progress.tasks[task].completed or 1,
                )
    table = Table(title="Write-back to Animana")
    for column in ("practice", "sent", "retried", "waiting", "stale", "dead"):
        table.add_column(column, justify="left" if column == "practice" else "right")
    for r in reports:
        table.add_row(r.practice, *(str(n) for n in (r.sent, r.retried, r.waiting, r.stale, r.dead)))
    out().print(table)
    if any(r.synced for r in reports):
        synced = {r.practice: ", ".join(r.synced) for r in reports if r.synced}
        out().print(
            "newer in Animana, synced and settled: " + "; ".join(f"{c}: {s}" for c, s in synced.items())
        )


@integration_app.command("retry-dead")
def retry_dead_cmd(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Outbox entry ids (default: every dead letter)")
    ] = None,
    practice: PracticesOption = None,
) -> None:
    """Put dead letters back in the queue (pending, due now, attempts from 0); `push` or the sensor sends them."""
    from sqlalchemy import text

    from warehouse.integration.outbox import retry_dead

    with _errors():
        runtime = migrated_runtime()
        codes = _practices(runtime, practice)
        with _session(runtime, list(codes)) as session:
            if ids:
                found = session.execute(
                    text(
                        "SELECT id, practice_id FROM writeback_outbox WHERE id = ANY(:ids) AND state = 'dead'"
                    ),
                    {"ids": ids},
                ).all()
                if missing := sorted(set(ids) - {r.id for r in found}):
                    raise CliError(f"no dead letter with id(s) {', '.join(map(str, missing))}")
                by_practice: dict[int, list[int] | None] = {}
                for r in found:
                    by_practice.setdefault(r.practice_id, []).append(r.id)  # type: ignore[union-attr]
            else:
                by_practice = dict.fromkeys(codes)
            counts = {codes[p]: retry_dead(session, p, chosen) for p, chosen in by_practice.items()}
    for code, n in counts.items():
        out().print(f"{code}: {n} dead letter(s) back in the queue")


# --- conflicts -------------------------------------------------------------------------------------------


@integration_app.command("conflicts")
def conflicts_cmd(practice: PracticesOption = None, as_json: JsonOption = False) -> None:
    """Open conflicts, one line per field: VetConnect's value beside Animana's."""
    import polars as pl

    from warehouse.integration.conflicts import conflicts_frame, open_conflicts

    with _errors():
        runtime = migrated_runtime()
        codes = _practices(runtime, practice)
        with _session(runtime, list(codes)) as session:
            found = open_conflicts(session, list(codes), master_key=runtime.master_key())
    # The column beside its label: `resolve --field COLUMN=…` names it.
    columns = pl.Series("column", [f.column for c in found for f in c.fields], dtype=pl.Utf8)
    frame = conflicts_frame(found).with_columns(columns)
    if as_json:
        typer.echo(frame.write_json())
        return
    table = Table(title=f"Open conflicts: {len(found)}")
    for column in ("conflict", "practice", "module", "record", "field", "VetConnect", "Animana", "detected"):
        table.add_column(column)
    for row in frame.iter_rows(named=True):
        table.add_row(
            str(row["conflict"]), codes[row["practice_id"]], row["module"], row["record"], f"{row['field']} ({row['column']})",
            row["local"], row["animana"], _when(row["detected_at"]),
        )  # fmt: skip
    out().print(table)


def parse_choice(fields: Sequence[str], given: Sequence[str], every: str | None) -> dict[str, str]:
    """``COLUMN=local|animana`` per field, ``every`` for the fields not named; every field needs a side."""
    choice = dict.fromkeys(fields, every) if every else {}
    for item in given:
        column, _, side = item.partition("=")
        if side not in SIDES:
            raise CliError(f"--field {item!r}: expected COLUMN=local or COLUMN=animana")
        if column not in fields:
            raise CliError(
                f"--field {item!r}: the conflict has no field {column!r} (it has {', '.join(fields)})"
            )
        choice[column] = side
    if missing := [f for f in fields if f not in choice]:
        raise CliError(f"choose a side for {', '.join(missing)} (--field COLUMN=local|animana or --all SIDE)")
    return choice  # type: ignore[return-value]


@integration_app.command("resolve")
def resolve_cmd(
    conflict_id: Annotated[int, typer.Argument(help="The conflict's id (see `integration conflicts`)")],
    field: Annotated[
        list[str] | None, typer.Option("--field", "-f", help="COLUMN=local|animana (repeatable)")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--all", help="local or animana: this side for every field not named")
    ] = None,
) -> None:
    """Resolve a conflict per field; the result is kept here and, unless the module is native, written back."""
    from sqlalchemy import text

    from warehouse.integration.conflicts import resolve
    from warehouse.integration.modes import mode_of
    from warehouse.kernel.tenancy import system_session

    with _errors():
        if every is not None and every not in SIDES:
            raise CliError("--all takes local or animana")
        runtime = migrated_runtime()
        with system_session(
            runtime.admin_engine, reason=f"integration cli: practice of conflict {conflict_id}"
        ) as s:
            found = s.execute(
                text(
                    "SELECT practice_id, module, fields FROM writeback_conflict WHERE id = :id AND state = 'open'"
                ),
                {"id": conflict_id},
            ).one_or_none()
        if found is None:
            raise CliError(f"no open conflict with id {conflict_id} (see `vetconnect integration conflicts`)")
        choice = parse_choice(sorted(found.fields), field or [], every)
        with _session(runtime, [found.practice_id]) as session:
            applied = resolve(session, _operator([found.practice_id]), conflict_id, choice)  # type: ignore[arg-type]
            native = mode_of(session, found.practice_id, found.module) == "native"
    out().print(f"conflict {conflict_id} resolved: " + ", ".join(f"{c} → {s}" for c, s in applied.items()))
    out().print(
        "kept here only (module is native)" if native else "the result goes to Animana with the next push"
    )


# --- cut-over --------------------------------------------------------------------------------------------


class _CutoverBars:
    """The cut-over's steps as rich progress bars (`warehouse.integration.cutover.CutoverProgress`)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def started(self, step: str, label: str, total: int | None = None) -> None:
        self._tasks[step] = self._progress.add_task(label, total=total)

    def advance(self, step: str, done: int) -> None:
        self._progress.advance(self._tasks[step], done)

    def finished(self, step: str, summary: str) -> None:
        task = self._tasks[step]
        done = self._progress.tasks[task].completed or 1
        self._progress.update(
            task,
            total=done,
            completed=done,
            description=f"{self._progress.tasks[task].description}: {summary}",
        )


@integration_app.command("cutover")
def cutover_cmd(
    practice: Annotated[str, typer.Option("--practice", "-p", help="Practice code")],
    module: Annotated[str, typer.Option("--module", "-m", help="clients, agenda, records or invoices")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check, sync and reconcile; send nothing and switch nothing")
    ] = False,
    confirm_differences: Annotated[
        bool,
        typer.Option("--confirm-differences", help="Cut over despite the differences found (needs --reason)"),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the differences are accepted (audited)")
    ] = None,
) -> None:
    """Cut a module over to native: drain its write-back, sync it a last time, reconcile every record with Animana,
    then stop reading Animana for it. Stops (exit 1) on differences unless they are confirmed with a reason."""
    from warehouse.integration.cutover import Confirmation, cut_over

    with _errors():
        if confirm_differences and not (reason or "").strip():
            raise CliError('--confirm-differences needs --reason "why they are accepted"')
        runtime = migrated_runtime()
        ((practice_id, _code),) = _practices(runtime, [practice]).items()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=out()) as progress:
            result = cut_over(
                runtime.app_engine, runtime.cutover_port, _operator([practice_id]), practice_id=practice_id,
                module=module, master_key=runtime.master_key(), dry_run=dry_run,
                confirmation=Confirmation(reason or "") if confirm_differences else None,
                progress=_CutoverBars(progress),
            )  # fmt: skip
    table = Table(title=f"Reconciliation of {module} at {result.practice_code}")
    for column in ("resource", "Animana", "VetConnect", "equal", "missing", "extra", "different"):
        table.add_column(column, justify="left" if column == "resource" else "right")
    for r in result.resources:
        table.add_row(
            r.resource, *(str(n) for n in (r.api, r.mirrored, r.equal, r.missing, r.extra, r.different))
        )
    out().print(table)
    if result.differences:
        listed = Table(title=f"Differences: {result.difference_count}")
        for column in ("resource", "Animana id", "kind", "fields", "note"):
            listed.add_column(column)
        for d in result.differences[:200]:
            listed.add_row(d.resource, d.animana_id, d.kind, ", ".join(d.fields), d.note)
        out().print(listed)
    for blocker in result.blockers:
        out().print(f"[yellow]would stop on[/yellow]: {blocker}")
    if result.outcome == "native":
        accepted = f" (differences accepted: {result.reason})" if result.reason else ""
        out().print(f"{result.practice_code} {module}: native{accepted}; Animana is no longer read for it")
    elif result.outcome == "rehearsed":
        out().print(f"dry run: nothing was sent or switched; {result.difference_count} difference(s)")
        if result.difference_count or result.blockers:
            raise typer.Exit(1)  # a cut-over now would stop
    else:
        out().print(
            f"[red]stopped[/red]: {result.difference_count} difference(s). Fix them, or rerun with "
            '--confirm-differences --reason "…" to accept them.'
        )
        raise typer.Exit(1)
