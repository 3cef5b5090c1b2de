"""``vetconnect sync animana``: mirror Animana practices into the warehouse, with progress and a summary.

The command, the demo and the Dagster assets all run `connectors.animana.sync` — one sync service.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from connectors.animana import AnimanaClient, AnimanaError
from connectors.animana.resources.registry import RESOURCE_ORDER
from connectors.animana.sync.links import LinkedPractice, linked_practices
from connectors.animana.sync.practice import PracticeResult
from connectors.animana.sync.processes import streaming_gc
from connectors.animana.sync.service import sync_all
from vetconnect.runtime import SetupError, get_runtime
from vetconnect.settings import MissingSetting
from warehouse.migrations import runner as migrate

sync_app = typer.Typer(help="Synchronise external systems into the warehouse.", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def _expected_errors() -> Iterator[None]:
    try:
        yield
    except (AnimanaError, SetupError, MissingSetting, LookupError, migrate.MigrationsBehind) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@sync_app.command("animana")
def sync_animana(
    practice: Annotated[
        list[str] | None, typer.Option("--practice", "-p", help="Practice code (repeatable)")
    ] = None,
    all_practices: Annotated[bool, typer.Option("--all", help="Every practice linked to Animana")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything and report drift")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=8,
            help="Practices synced at once (a worker process each, with its own database connection and HTTP client)",
        ),
    ] = 1,
) -> None:
    """Incremental (default) or full sync of Animana practices into the warehouse."""
    if bool(practice) == all_practices:
        err.print("[red]error:[/red] give --practice CODE (one or more) or --all")
        raise typer.Exit(2)
    with _expected_errors():
        runtime = get_runtime()
        migrate.require_current(runtime.reachable_admin_url)
        practices = linked_practices(runtime.admin_engine, None if all_practices else practice)
        if not practices:
            out.print("no practice is linked to Animana (tenant.animana_practice_id)")
            return
        with streaming_gc(), AnimanaClient.from_env() as client:
            results = run_sync(
                runtime.app_engine,
                client,
                practices,
                master_key=runtime.master_key(),
                full=full,
                workers=workers,
            )
    print_summary(results)


def run_sync(
    app_engine,  # noqa: ANN001 - sqlalchemy Engine
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
    full: bool = False,
    console: Console | None = None,
    workers: int = 1,
) -> list[PracticeResult]:
    """Sync the practices, ``workers`` at a time, with a progress bar per resource (rows, rate, ETA against the
    API totals)."""
    console = console or out
    totals = dict.fromkeys(RESOURCE_ORDER, 0)
    for p in practices:
        for resource, n in client.counts(p.animana_id).items():
            if resource in totals:
                totals[resource] += n
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f} rows"),
        TextColumn("{task.fields[rate]:>8} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {
            r: progress.add_task(r, total=totals[r] or None, rate="-") for r in RESOURCE_ORDER
        }

        def advance(_code: str, resource: str, records: int) -> None:
            task = tasks[resource]
            progress.advance(task, records)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

        results = sync_all(
            app_engine,
            client,
            practices,
            master_key=master_key,
            full=full,
            progress=advance,
            workers=workers,
            processes=True,
        )
        for task in tasks.values():  # incremental runs read less than the totals: done is done
            progress.update(
                task, total=progress.tasks[task].completed or 1, completed=progress.tasks[task].completed or 1
            )
    return results


def print_summary(results: Sequence[PracticeResult], console: Console | None = None) -> None:
    console = console or out
    table = Table(title="Animana sync")
    for column in ("practice", "mode", "resource", "inserted", "updated", "deleted", "quarantined"):
        table.add_column(
            column, justify="right" if column not in ("practice", "mode", "resource") else "left"
        )
    for result in results:
        for resource, c in result.counts.items():
            if c.inserted or c.updated or c.deleted or c.quarantined:
                table.add_row(
                    result.practice.code, "full" if result.full else "incremental", resource,
                    f"{c.inserted:,}", f"{c.updated:,}", f"{c.deleted:,}", f"{c.quarantined:,}",
                )  # fmt: skip
        t = result.totals()
        table.add_row(
            f"[bold]{result.practice.code}[/bold]", "full" if result.full else "incremental", "[bold]total[/bold]",
            f"{t.inserted:,}", f"{t.updated:,}", f"{t.deleted:,}", f"{t.quarantined:,}", end_section=True,
        )  # fmt: skip
    console.print(table)


# --- demo ------------------------------------------------------------------------------------------------
DEMO_SEED = 2026


def demo_scale() -> str:
    """VETCONNECT_DEMO_SCALE=small keeps the demo quick for tests; "demo" gives dashboards and models enough."""
    return os.environ.get("VETCONNECT_DEMO_SCALE", "demo")


def demo_sync(
    app_engine,  # noqa: ANN001 - sqlalchemy Engine
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
) -> list[PracticeResult]:
    """Load the demo practices from the demo's simulator (`vetconnect.demo_animana`) through the same sync as
    `vetconnect sync animana`. Idempotent: a second run with the same anchor finds nothing new (the data is
    deterministic)."""
    results = run_sync(app_engine, client, practices, master_key=master_key, workers=2)
    print_summary(results)
    return results
