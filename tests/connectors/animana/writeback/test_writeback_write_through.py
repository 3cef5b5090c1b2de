"""`animana` mode's write-through (warehouse.integration.gateway with the connector's `WriteThrough`): a local write
reaches Animana before it commits here, and Animana's refusal or absence leaves nothing saved."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from connectors.animana import AnimanaClient, RetryPolicy, load_settings
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.writeback.write_through import WriteThrough, write_through_from_env
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox
from tests.factories import cipher_for
from warehouse.integration.gateway import (
    UpstreamRefused,
    UpstreamUnavailable,
    install_write_through,
)
from warehouse.tenants.admin import add_practice


@contextmanager
def writing_through(world: SyncWorld, practice: LinkedPractice, client: AnimanaClient) -> Iterator[Session]:
    with as_app(world, practice) as session:
        install_write_through(session, WriteThrough(client), master_key=MASTER_KEY)
        yield session


def _write(
    world: SyncWorld, practice: LinkedPractice, client: AnimanaClient, sql: str, **params: object
) -> None:
    with writing_through(world, practice, client) as session:
        session.execute(text(sql), params)


def _a_client(world: SyncWorld, practice: LinkedPractice) -> tuple[int, int, str]:
    with as_app(world, practice) as session:
        row = session.execute(
            text(
                "SELECT id, animana_id, last_name FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1"
            )
        ).one()
    return row.id, int(row.animana_id), row.last_name


def _local(world: SyncWorld, practice: LinkedPractice, client_id: int) -> tuple:
    with as_app(world, practice) as session:
        return tuple(
            session.execute(
                text("SELECT last_name, writeback_pending, animana_version FROM client WHERE id = :c"),
                {"c": client_id},
            ).one()
        )


def test_a_write_reaches_animana_before_it_commits_and_the_row_agrees_with_its_answer(
    synced_world: SyncWorld,
):
    practice = synced_world.practices[1]
    client_id, animana_id, _ = _a_client(synced_world, practice)
    with synced_world.client() as client:
        with writing_through(synced_world, practice, client) as session:
            session.execute(
                text("UPDATE client SET last_name = 'Doorgeschreven' WHERE id = :c"), {"c": client_id}
            )
            with session.begin_nested():  # a service's savepoint (booking uses them): its writes go too
                session.execute(text("UPDATE client SET city = 'Zwolle' WHERE id = :c"), {"c": client_id})
        relation = client.get(practice.animana_id, "relations", animana_id)
    assert (relation.last_name, relation.city) == ("Doorgeschreven", "Zwolle")
    entries = outbox(synced_world, practice)
    assert [e["state"] for e in entries] == ["done", "done"]
    assert _local(synced_world, practice, client_id) == (
        "Doorgeschreven",
        False,
        entries[-1]["answered_version"],
    )


def _savepoint_then_failure(
    world: SyncWorld, practice: LinkedPractice, client: AnimanaClient, client_id: int
) -> None:
    with writing_through(world, practice, client) as session:
        with session.begin_nested():
            session.execute(
                text("UPDATE client SET last_name = 'Nooit verstuurd' WHERE id = :c"), {"c": client_id}
            )
        raise RuntimeError("a later step of the same service fails")


def test_a_released_savepoint_sends_nothing_before_the_transaction_commits(synced_world: SyncWorld):
    """SQLAlchemy announces a savepoint's release as a commit too: sending then would leave in Animana what a later
    failure of the same transaction rolls back here."""
    practice = synced_world.practices[1]
    client_id, animana_id, last_name = _a_client(synced_world, practice)
    with synced_world.client() as client:
        with pytest.raises(RuntimeError, match="a later step"):
            _savepoint_then_failure(synced_world, practice, client, client_id)
        relation = client.get(practice.animana_id, "relations", animana_id)
    assert relation.last_name == last_name
    assert _local(synced_world, practice, client_id)[0] == last_name
    assert outbox(synced_world, practice) == []


def test_a_write_animana_refuses_raises_its_field_messages_and_nothing_is_saved(synced_world: SyncWorld):
    practice = synced_world.practices[1]
    client_id, _, _ = _a_client(synced_world, practice)
    before = _local(synced_world, practice, client_id)
    with as_app(synced_world, practice) as session:
        bad_iban = cipher_for(session, practice.practice_id, MASTER_KEY).encrypt("iban", "NL00ABNA0417164300")
    update = "UPDATE client SET last_name = 'Nooit', iban_enc = :iban WHERE id = :c"
    with synced_world.client() as client, pytest.raises(UpstreamRefused) as refused:
        _write(synced_world, practice, client, update, iban=bad_iban, c=client_id)
    assert refused.value.fields == {"iban": "invalid IBAN (checksum)"}
    assert refused.value.field == "iban"  # where the form shows it
    assert _local(synced_world, practice, client_id) == before
    assert outbox(synced_world, practice) == []


def test_an_outage_names_animana_and_nothing_is_saved(synced_world: SyncWorld):
    practice = synced_world.practices[1]
    client_id, _, _ = _a_client(synced_world, practice)
    before = _local(synced_world, practice, client_id)
    unreachable = load_settings(
        url="http://127.0.0.1:9", client_id="x", client_secret="y" * 8, connect_timeout=1
    )
    update = "UPDATE client SET last_name = 'Offline' WHERE id = :c"
    with AnimanaClient(unreachable, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(UpstreamUnavailable) as exc:
            _write(synced_world, practice, client, update, c=client_id)
    assert str(exc.value).startswith("Animana is unreachable")
    assert _local(synced_world, practice, client_id) == before
    assert outbox(synced_world, practice) == []


def test_a_practice_not_linked_to_animana_saves_and_captures_nothing(synced_world: SyncWorld):
    with synced_world.db.system() as session:
        unlinked = add_practice(
            session, franchise_id=synced_world.practices[0].franchise_id, code="los", name="Los",
            master_key=MASTER_KEY,
        )  # fmt: skip
    practice = LinkedPractice(unlinked.id, synced_world.practices[0].franchise_id, "los", 0)
    with synced_world.client() as client:
        with writing_through(synced_world, practice, client) as session:
            session.execute(
                text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Lokaal')"), {"p": unlinked.id}
            )
    # No Animana to tell: nothing waits for one (a linked practice's same write does, see above).
    assert outbox(synced_world, practice) == []
    with synced_world.db.system() as session:
        assert session.execute(
            text("SELECT last_name, writeback_pending FROM client WHERE practice_id = :p"), {"p": unlinked.id}
        ).one() == ("Lokaal", False)


def test_without_animana_settings_a_linked_practice_s_write_is_refused_naming_them(
    synced_world: SyncWorld, monkeypatch: pytest.MonkeyPatch
):
    for name in [n for n in os.environ if n.startswith("VETCONNECT_ANIMANA_")]:
        monkeypatch.delenv(name)
    practice = synced_world.practices[1]
    client_id, _, _ = _a_client(synced_world, practice)
    sender = write_through_from_env()
    with pytest.raises(UpstreamUnavailable) as exc, as_app(synced_world, practice) as session:  # noqa: PT012
        install_write_through(session, sender, master_key=MASTER_KEY)
        session.execute(text("UPDATE client SET last_name = 'Zonder' WHERE id = :c"), {"c": client_id})
    assert str(exc.value).startswith("Animana is unreachable: ")
    assert "VETCONNECT_ANIMANA_" in str(exc.value)
    assert outbox(synced_world, practice) == []
