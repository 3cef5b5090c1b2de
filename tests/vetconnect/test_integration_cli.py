"""`vetconnect integration …` through Typer's CliRunner, against a synced warehouse and the simulator over HTTP:
modes (confirmed, audited), a local change pushed to Animana, a refusal parked as a dead letter and retried, and
a field both sides changed queued as a conflict, resolved from the shell and written back."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.animana_sync_support import SyncWorld
from vetconnect.cli import app
from vetconnect.integration_cli import CliError, parse_choice
from warehouse.kernel.tenancy import AccessContext


def _run(runner: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, ["integration", *args], input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def _row(output: str, first: str) -> list[str]:
    """The cells of the table row starting with ``first``."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == first:
            return cells[1:]
    raise AssertionError(f"no row {first!r} in:\n{output}")


def _rename(world: SyncWorld, client_id: int, last_name: str) -> None:
    """A local edit as the app makes it (raw SQL as the app role: captured all the same)."""
    practice = world.practices[0].practice_id
    with world.db.as_app(AccessContext.for_practices([practice])) as session:
        session.execute(
            text("UPDATE client SET last_name = :n WHERE practice_id = :p AND id = :id"),
            {"n": last_name, "p": practice, "id": client_id},
        )


def _linked_client(world: SyncWorld, offset: int) -> tuple[int, int]:
    with world.db.system() as session:
        row = session.execute(
            text(
                "SELECT id, animana_id FROM client WHERE practice_id = :p AND animana_id IS NOT NULL "
                "ORDER BY id OFFSET :o LIMIT 1"
            ),
            {"p": world.practices[0].practice_id, "o": offset},
        ).one()
    return row.id, int(row.animana_id)


def _in_animana(world: SyncWorld, animana_id: int) -> str:
    with world.client() as client:
        return client.get(world.practices[0].animana_id, "relations", animana_id).last_name  # type: ignore[union-attr]


def test_status_and_modes(cli: CliRunner, synced_world: SyncWorld):
    world = synced_world
    rows = json.loads(_run(cli, "status", "--json"))
    assert len(rows) == 8  # two practices × four modules
    assert {r["mode"] for r in rows} == {"animana"}
    assert {r["outbox_depth"] for r in rows} == {0} and all(r["last_sync"] for r in rows)

    assert "sync-1001 clients: animana" in _run(cli, "mode", "-p", "sync-1001", "-m", "clients")
    declined = _run(cli, "mode", "-p", "sync-1001", "-m", "clients", "hybrid", stdin="n\n", code=1)
    assert "nothing changed" in declined
    assert "animana → hybrid" in _run(cli, "mode", "-p", "sync-1001", "-m", "clients", "hybrid", "--yes")
    assert "already hybrid" in _run(cli, "mode", "-p", "sync-1001", "-m", "clients", "hybrid", "--yes")
    assert "unknown module" in _run(cli, "mode", "-p", "sync-1001", "-m", "billing", "native", code=1)
    assert "nope" in _run(cli, "status", "-p", "nope", code=1)

    table = _run(cli, "status", "--practice", "sync-1001")
    assert _row(table, "sync-1001")[:2] == ["Clients and patients", "hybrid"]
    with world.db.system() as session:
        audit = session.execute(
            text("SELECT detail FROM audit_log WHERE entity = 'integration_mode' AND practice_id = :p"),
            {"p": world.practices[0].practice_id},
        ).scalars().all()  # fmt: skip
    assert audit == [{"module": "clients", "from": "animana", "to": "hybrid"}]


def test_push_dead_letters_and_conflicts(cli: CliRunner, synced_world: SyncWorld):
    world = synced_world
    _run(cli, "mode", "-p", "sync-1001", "-m", "clients", "hybrid", "--yes")
    (first, first_aid), (second, second_aid) = _linked_client(world, 0), _linked_client(world, 1)
    _rename(world, first, "Pushed-Eerste")
    _rename(world, second, "Pushed-Tweede")
    depth = {
        (r["practice_code"], r["module"]): r["outbox_depth"]
        for r in json.loads(_run(cli, "status", "--json"))
    }
    assert depth[("sync-1001", "clients")] == 2 and depth[("sync-1002", "clients")] == 0

    pushed = _run(cli, "push", "--practice", "sync-1001")
    assert _row(pushed, "sync-1001") == ["2", "0", "0", "0", "0"]  # sent, retried, waiting, stale, dead
    assert (_in_animana(world, first_aid), _in_animana(world, second_aid)) == (
        "Pushed-Eerste",
        "Pushed-Tweede",
    )
    assert _row(_run(cli, "push"), "sync-1001") == [
        "0",
        "0",
        "0",
        "0",
        "0",
    ]  # nothing left: nothing sent twice

    # Animana refuses: a dead letter with the reason, visible, and retried on request.
    world.sim.configure(refuse_writes=1.0)
    _rename(world, first, "Geweigerd")
    assert _row(_run(cli, "push", "-p", "sync-1001"), "sync-1001")[4] == "1"
    status = _row(_run(cli, "status", "-p", "sync-1001"), "sync-1001")
    assert status[6] == "1" and "dead letter" in status[8]
    world.sim.configure(refuse_writes=0.0)
    assert "sync-1001: 1 dead letter(s) back in the queue" in _run(cli, "retry-dead", "-p", "sync-1001")
    assert _row(_run(cli, "push", "-p", "sync-1001"), "sync-1001")[0] == "1"
    assert _in_animana(world, first_aid) == "Geweigerd"
    assert "no dead letter with id(s) 999999" in _run(cli, "retry-dead", "999999", code=1)

    # Both sides change one surname: the push finds Animana newer, syncs, and the field waits for a person.
    _rename(world, second, "Lokaal")
    world.sim.edit(world.practices[0].animana_id, "relations", second_aid, {"last_name": "Animana-kant"})
    assert _row(_run(cli, "push", "-p", "sync-1001"), "sync-1001")[3] == "1"  # stale
    conflicts = json.loads(_run(cli, "conflicts", "--json"))
    assert [(c["field"], c["column"], c["local"], c["animana"]) for c in conflicts] == [
        ("surname", "last_name", "Lokaal", "Animana-kant")
    ]
    assert _in_animana(world, second_aid) == "Animana-kant"  # nothing overwritten while a person decides
    conflict_id = str(conflicts[0]["conflict"])
    assert _row(_run(cli, "conflicts"), conflict_id)[3:6] == ["surname (last_name)", "Lokaal", "Animana-kant"]
    assert "choose a side" in _run(cli, "resolve", conflict_id, code=1)
    assert "last_name → local" in _run(cli, "resolve", conflict_id, "--all", "local")
    assert json.loads(_run(cli, "conflicts", "--json")) == []
    assert _row(_run(cli, "push", "-p", "sync-1001"), "sync-1001")[0] == "1"
    assert _in_animana(world, second_aid) == "Lokaal"


def test_a_choice_names_a_side_for_every_field():
    assert parse_choice(["city", "last_name"], ["city=animana"], "local") == {
        "city": "animana",
        "last_name": "local",
    }
    with pytest.raises(CliError, match="choose a side for last_name"):
        parse_choice(["city", "last_name"], ["city=local"], None)
    with pytest.raises(CliError, match="no field 'name'"):
        parse_choice(["city"], ["name=local"], None)
    with pytest.raises(CliError, match="COLUMN=local"):
        parse_choice(["city"], ["city=both"], None)
