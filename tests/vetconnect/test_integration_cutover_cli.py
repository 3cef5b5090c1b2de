"""`vetconnect integration cutover` through Typer's CliRunner, against a synced warehouse and the simulator over
HTTP: a dry run lists a difference and switches nothing, the cut-over stops on it (exit 1) until it is confirmed
with a reason, then the module is native."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from tests.animana_sync_support import SyncWorld
from vetconnect.cli import app
from warehouse.integration.capture import writing_as


def _run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["integration", *args])
    assert result.exit_code == code, result.output
    return result.output


def _row(output: str, first: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == first:
            return cells[1:]
    raise AssertionError(f"no row {first!r} in:\n{output}")


def test_cutover_stops_on_a_difference_until_confirmed_with_a_reason(cli: CliRunner, synced_world: SyncWorld):
    code = synced_world.practices[0].code
    with synced_world.db.system("test: a payment that drifted") as session:
        writing_as(session, "writeback")
        drifted = session.execute(
            text(
                "UPDATE payment SET amount_cents = amount_cents + 1 WHERE practice_id = :p "
                "AND id = (SELECT min(id) FROM payment WHERE practice_id = :p) RETURNING animana_id"
            ),
            {"p": synced_world.practices[0].practice_id},
        ).scalar_one()
    args = ("cutover", "--practice", code, "--module", "invoices")

    rehearsal = _run(cli, *args, "--dry-run", code=1)
    (listed,) = [line for line in rehearsal.splitlines() if "different" in line and f" {drifted} " in line]
    assert [c.strip() for c in listed.strip("│ ").split("│")] == [
        "payments",
        drifted,
        "different",
        "amount_cents",
    ]
    assert "dry run: nothing was sent or switched; 1 difference(s)" in rehearsal
    invoices = _row(rehearsal, "invoices")
    assert invoices[0] == invoices[1] == invoices[2] != "0"  # Animana = VetConnect = equal

    stopped = _run(cli, *args, code=1)
    assert "stopped: 1 difference(s)" in stopped
    assert f"{code} invoices: animana" in _run(cli, "mode", "--practice", code, "--module", "invoices")

    refused = _run(cli, *args, "--confirm-differences", code=1)
    assert "--confirm-differences needs --reason" in refused

    done = _run(cli, *args, "--confirm-differences", "--reason", "Rounding fixed at the desk")
    assert "native (differences accepted: Rounding fixed at the desk)" in done
    assert "native" in _run(cli, "mode", "--practice", code, "--module", "invoices")
    again = _run(cli, *args, code=1)
    assert "native already" in again
