"""``vetconnect gdpr erase`` and ``purge`` against a synced warehouse (practice sync-1001, animana mode: the
pseudonym reaches Animana as the command commits) and the real simulator."""

from __future__ import annotations

import datetime as dt

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


def test_the_franchise_sets_its_retention_and_the_next_erasure_keeps_the_records_that_long(
    cli: CliRunner, synced_world: SyncWorld
):
    world = synced_world
    shown = _gdpr(cli, "retention", "--franchise", "fr-sync")
    assert shown.exit_code == 0, shown.output
    assert "fr-sync keeps an erased client's records 7 years after the last activity." in shown.output

    refused = _gdpr(cli, "retention", "--franchise", "fr-sync", "--years", "0")
    assert refused.exit_code == 1 and "Keep records between 1 and 30 years." in refused.output
    unknown = _gdpr(cli, "retention", "--franchise", "nope", "--years", "5")
    assert unknown.exit_code == 1 and "no franchise with code nope" in unknown.output

    changed = _gdpr(cli, "retention", "--franchise", "fr-sync", "--years", "1")
    assert changed.exit_code == 0, changed.output
    assert "1 years after the last activity (was 7)" in changed.output
    with world.db.system("test: the retention and its audit") as session:
        assert (
            session.execute(text("SELECT retention_years FROM tenant WHERE code = 'fr-sync'")).scalar_one()
            == 1
        )
        audited = session.execute(
            text("SELECT practice_id, detail FROM audit_log WHERE entity = 'retention' ORDER BY practice_id")
        ).all()
    assert [p for p, _ in audited] == sorted(p.practice_id for p in world.practices)
    assert all(detail["retention_years"] == {"old": 7, "new": 1} for _, detail in audited)

    # The next erasure keeps the records one year after the client's last activity (which is before today).
    client_id, _, _ = _debt_free_client(world)
    erased = _gdpr(cli, "erase", "--practice", "sync-1001", "--client", str(client_id), "--yes")
    assert erased.exit_code == 0, erased.output
    with world.db.system("test: the erasure's retention") as session:
        until = session.execute(
            text("SELECT retention_until FROM client_erasure WHERE client_id = :c"), {"c": client_id}
        ).scalar_one()
    today = dt.date.today()
    assert until <= today.replace(year=today.year + 1), until
