"""``vetconnect health [--json]``: every health check in a table (or as JSON); the exit code is the worst status
(0 ok, 1 warn, 2 fail), so cron, systemd or a load balancer's script can act on it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vetconnect.runtime import get_runtime
from warehouse.health import display
from warehouse.health.checks import Status
from warehouse.health.report import run_health

COLOURS = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}


def health(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check the database, Animana, sync lag, write-back, conflicts, device inbox, MLLP and backups."""
    out = Console(soft_wrap=as_json)
    report = run_health(get_runtime().health_sources())
    if as_json:
        out.print_json(json.dumps(report.as_json()))
    else:
        table = Table(title=f"VetConnect health: {report.status.label}")
        for column in ("Check", "Status", "Value", "Threshold", "Detail"):
            table.add_column(column, overflow="fold")
        for c in report.checks:
            colour = COLOURS[c.status]
            table.add_row(c.name, f"[{colour}]{c.status.label}[/{colour}]", display.amount(c.value, c.unit), display.threshold(c),
                          c.detail)  # fmt: skip
        out.print(table)
    raise typer.Exit(int(report.status))
