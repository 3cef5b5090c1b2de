"""``vetconnect gdpr erase`` and ``purge`` against a synced warehouse (practice sync-1001, animana mode: the
pseudonym reaches Animana as the command commits) and the real simulator."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from tests.animana_sync_support import SyncWorld
from vetconnect.cli import app


def _gdpr(runner: CliRunner, *args: str):  # noqa: ANN202
    return runner.invoke(app, ["gdpr", *args])


def _debt_free_client(world: SyncWorld) -> tuple[int, int, str]:
    """(id, Animana id, surname) of a client of sync-1001 who owes nothing and has an animal."""
    with world.db.system("test: a client without debts") as session:
        row = session.execute(
            text(
                """SELECT c.id, c.animana_id, c.last_name FROM client c
                    WHERE c.practice_id = :p AND EXISTS (SELECT FROM client_patient cp
                                                          WHERE cp.practice_id = c.practice_id AND cp.client_id = c.id)
                      AND coalesce((SELECT sum(total_incl_cents) FROM invoice i WHERE i.practice_id = c.practice_id
                                     AND i.client_id = c.id AND i.status IN ('issued', 'paid', 'credited')), 0)
                          <= coalesce((SELECT sum(amount_cents) FROM payment y WHERE y.practice_id = c.practice_id
                                        AND y.client_id = c.id), 0)
                    ORDER BY c.id LIMIT 1"""
            ),
            {"p": world.practices[0].practice_id},
        ).one()
    return row.id, int(row.animana_id), row.last_name


def test_erase_says_what_it_would_do_without_yes_and_erases_with_it(cli: CliRunner, synced_world: SyncWorld):
    world, practice = synced_world, synced_world.practices[0]
    client_id, relation, surname = _debt_free_client(world)

    asked = _gdpr(cli, "erase", "--practice", "sync-1001", "--client", str(client_id))
    assert asked.exit_code == 1
    assert "not erased without --yes. It would erase" in asked.output and surname in asked.output
    with world.db.system("test: nothing erased yet") as session:
        assert session.execute(text("SELECT count(*) FROM client_erasure")).scalar_one() == 0

    done = _gdpr(cli, "erase", "--practice", "sync-1001", "--client", str(client_id), "--yes")
    assert done.exit_code == 0, done.output
    with world.db.system("test: erased") as session:
        pseudonym = session.execute(
            text("SELECT pseudonym FROM client_erasure WHERE client_id = :c"), {"c": client_id}
        ).scalar_one()
    assert f"is now 'Erased client {pseudonym}'" in done.output
    with world.client() as animana:  # animana mode: sent before the command's transaction committed
        assert (
            animana.get(practice.animana_id, "relations", relation).last_name == f"Erased client {pseudonym}"
        )

    again = _gdpr(cli, "erase", "--practice", "sync-1001", "--client", str(client_id), "--yes")
    assert again.exit_code == 1 and "already erased" in again.output


def test_purge_dry_run_and_unknown_practice(cli: CliRunner):
    purged = _gdpr(cli, "purge", "--dry-run")
    assert purged.exit_code == 0, purged.output
    assert "Would purge the records of 0 erased client(s)." in purged.output
    unknown = _gdpr(cli, "erase", "--practice", "nope", "--client", "1")
    assert unknown.exit_code == 1 and "no practice with code nope" in unknown.output
