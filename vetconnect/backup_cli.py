"""``vetconnect backup create | list | verify | restore | prune | forget-erased``: base backups of the embedded
server, point-in-time restore from them and the WAL archive, pruning, crypto-erasure of the generations from
before a client erasure (the work is in :mod:`vetconnect.backup`, :mod:`vetconnect.backup_prune` and
:mod:`vetconnect.backup_forget`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vetconnect import backup, backup_forget, backup_prune, pgserver
from vetconnect.settings import Settings, get_settings
from warehouse.kernel.formatting import DEFAULT_TZ, date_time, number

backup_app = typer.Typer(
    help="Backups of the embedded server and point-in-time restore.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

EXTERNAL = (
    "DATABASE_URL is set: the server is external, so back it up on that server (pg_basebackup against it, WAL "
    "archiving there, or the provider's point-in-time recovery; see README, 'Backups')."
)


@contextmanager
def _errors() -> Iterator[Settings]:
    # Imported here: vetconnect.cli imports this module to mount it.
    from vetconnect.cli import expected_errors

    settings = get_settings()
    with expected_errors(backup.BackupError):
        if settings.database_url is not None:
            raise backup.BackupError(EXTERNAL)
        yield settings


def _server(settings: Settings) -> pgserver.ServerInfo:
    """The embedded server, started (with WAL archiving) if it is not running."""
    return pgserver.start(settings.pgdata, wal_archive=settings.wal_archive)


def _megabytes(size_bytes: int) -> str:
    return f"{number(size_bytes / 1_000_000, 1)} MB"


@backup_app.command("create")
def create(
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Only the blocks changed since the newest backup (its chain)"),
    ] = False,
) -> None:
    """Take a base backup into VETCONNECT_HOME/backups/<label>/."""
    with _errors() as settings:
        server = _server(settings)
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("pg_basebackup", total=None)

            def report(done_kb: int, total_kb: int) -> None:
                progress.update(task, completed=done_kb * 1024, total=total_kb * 1024)

            made = backup.create_backup(server, settings.backups, incremental=incremental, progress=report)
        out.print(
            f"{made.kind} backup {made.label}: {_megabytes(made.size_bytes)} in "
            f"{number((made.finished_at - made.started_at).total_seconds(), 1)} s"
            + (f" (on top of {made.parent})" if made.parent else ""),
            highlight=False,
        )
        if made.kind == "full":
            _forget(settings, server, settings.backup_erasure_grace_days)


@backup_app.command("list")
def list_cmd() -> None:
    """The backups, oldest first, with their kind, local time and size."""
    with _errors() as settings:
        table = Table()
        # A label is what `backup verify` and a restore are given: folded onto more lines on a narrow terminal,
        # never cut short with an ellipsis.
        for column in ("label", "kind", "taken at (local time)", "size", "on top of", "state"):
            table.add_column(column, overflow="fold")
        for item in backup.list_backups(settings.backups):
            table.add_row(
                item.label,
                item.kind,
                date_time(item.started_at),
                _megabytes(item.size_bytes),
                item.parent or "",
                item.unreadable() or "readable",
            )
        out.print(table)


@backup_app.command("verify")
def verify(
    label: Annotated[str | None, typer.Argument(help="One backup (default: every backup)")] = None,
) -> None:
    """Check backups with pg_verifybackup (every file's size and checksum, and their WAL); exit 2 when damaged."""
    with _errors() as settings:
        chosen = (
            [backup.find_backup(settings.backups, label)] if label else backup.list_backups(settings.backups)
        )
        if not chosen:
            raise backup.BackupError(f"no backups in {settings.backups}")
        verdicts = [backup.verify_backup(item) for item in chosen]
    for verdict in verdicts:
        if verdict.ok:
            out.print(f"[green]ok[/green]      {verdict.label}", highlight=False)
        else:
            err.print(f"[red]damaged[/red] {verdict.label}: {verdict.detail}", highlight=False)
    if not all(v.ok for v in verdicts):
        raise typer.Exit(2)


def parse_moment(text: str) -> dt.datetime:
    """An ISO 8601 time; without an offset it is local time (as `backup list` shows)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise backup.BackupError(f"--to {text!r}: expected a time like 2026-05-20T14:30:00") from exc
    return moment.replace(tzinfo=DEFAULT_TZ) if moment.tzinfo is None else moment


@backup_app.command("restore")
def restore(
    target: Annotated[Path, typer.Option(help="A new directory: the restored VETCONNECT_HOME")],
    to: Annotated[
        str | None, typer.Option(help="Restore as of this time (ISO 8601, local time); default: the latest")
    ] = None,
) -> None:
    """Restore the newest backup chain finished before --to, then replay the WAL archive up to --to."""
    with _errors() as settings:
        moment = parse_moment(to) if to else None
        with out.status("restoring") as status:
            done = backup.restore(settings.backups, target, to=moment, step=lambda s: status.update(s))
        replayed = date_time(done.replayed_to) if done.replayed_to else "none after the backup"
        out.print(
            f"restored {' + '.join(done.chain)} into {done.pgdata}; last transaction replayed: {replayed}"
        )
        out.print(
            f"serve it with: VETCONNECT_HOME={target} vetconnect db start", highlight=False, soft_wrap=True
        )


@backup_app.command("prune")
def prune(
    keep: Annotated[
        int, typer.Option(help="How many of the newest full backups to keep (with their incrementals)")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted, delete nothing")
    ] = False,
) -> None:
    """Delete the backups older than the newest KEEP full ones, and the archived WAL none of the kept ones needs."""
    with _errors() as settings:
        plan = (backup_prune.plan_prune if dry_run else backup_prune.prune)(settings.backups, keep)
    verb = "would delete" if dry_run else "deleted"
    if not plan.deleted and not plan.wal:
        out.print(f"nothing to delete: {len(plan.kept)} backup(s) kept", highlight=False)
        return
    for item, size in zip(plan.deleted, plan.deleted_sizes, strict=True):
        out.print(f"{verb} {item.kind} backup {item.label} ({_megabytes(size)})", highlight=False)
    if plan.wal:
        wal_bytes = sum(w.size_bytes for w in plan.wal)
        out.print(
            f"{verb} {len(plan.wal)} archived WAL file(s) before {plan.first_kept_wal} "
            f"({plan.wal[0].name} … {plan.wal[-1].name}, {_megabytes(wal_bytes)})",
            highlight=False,
        )
    kept = ", ".join(b.label for b in plan.kept)
    out.print(
        f"kept {len(plan.kept)} backup(s): {kept}; {verb} {_megabytes(plan.freed_bytes)} in all",
        highlight=False,
    )


def _forget(settings: Settings, server: pgserver.ServerInfo, grace_days: int) -> None:
    done = backup_forget.forget_erased(
        settings.backups, backup_forget.newest_erasure(server), grace=dt.timedelta(days=grace_days)
    )
    if done.erasure is None:
        out.print("no client was ever erased: no backup key to destroy", highlight=False)
        return
    erased = date_time(done.erasure)
    if done.covering is None:
        out.print(
            f"no full backup started after the newest client erasure ({erased}): the keys stay until one does "
            "(`vetconnect backup create`)",
            highlight=False,
        )
        return
    for gone in done.destroyed:
        made = ", ".join(gone.backups) or "no backup"
        out.print(
            f"destroyed the key of generation {gone.generation.id} (started {date_time(gone.generation.started_at)}"
            f"; {made}; its archived WAL): unreadable from now on",
            highlight=False,
        )
    for waiting in done.waiting:
        until = date_time(waiting.started_at + dt.timedelta(days=grace_days))
        out.print(f"generation {waiting.id} is kept until {until} (grace period)", highlight=False)
    if not done.destroyed and not done.waiting:
        out.print(f"no generation from before the newest client erasure ({erased}) is left", highlight=False)


@backup_app.command("forget-erased")
def forget_erased(
    grace_days: Annotated[
        int | None,
        typer.Option(
            help="Keep generations younger than this (default: VETCONNECT_BACKUP_ERASURE_GRACE_DAYS)"
        ),
    ] = None,
) -> None:
    """Destroy the keys of the backup generations from before the newest client erasure, once a full backup
    after it exists: those backups and their WAL become unreadable everywhere (README, 'Backups')."""
    with _errors() as settings:
        _forget(
            settings,
            _server(settings),
            settings.backup_erasure_grace_days if grace_days is None else grace_days,
        )
