"""Registration and contact edits through the gateway, against the real Animana simulator over HTTP: in `animana`
mode the client is created in Animana first and the row carries its id (Animana's 422 names the form field and
nothing is saved), in `hybrid` an outbox entry waits for the dispatcher, in `native` nothing is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.animana import AnimanaClient
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.writeback.write_through import WriteThrough
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox, set_modes
from warehouse.clients.registration import Consents, Contact, NewClient, edit_contact, register_client
from warehouse.integration.gateway import UpstreamRefused, install_write_through
from warehouse.schema.clients import Client
from warehouse.security.permissions import Actor

BAKKER = NewClient(
    last_name="Bakker", first_name="Joost",
    contact=Contact(street="Lange Nieuwstraat", house_number="7 b", postcode="3512pd", city="Utrecht",
                    phone="06 1122 3344", email="joost@bakker.nl", preferred_channel="email"),
    consents=Consents(reminders_email=True),
)  # fmt: skip


@contextmanager
def _desk(world: SyncWorld, practice: LinkedPractice, client: AnimanaClient) -> Iterator[Session]:
    """The dashboard's session: the application role, write-through installed (dashboard.components.session)."""
    with as_app(world, practice) as session:
        install_write_through(session, WriteThrough(client), master_key=MASTER_KEY)
        yield session


def _register(
    world: SyncWorld, practice: LinkedPractice, client: AnimanaClient, new: NewClient = BAKKER
) -> int:
    with _desk(world, practice, client) as session:
        return register_client(session, Actor.at(None, practice.practice_id, {"receptionist"}),
                               practice_id=practice.practice_id, new=new, master_key=MASTER_KEY)  # fmt: skip


def _row(world: SyncWorld, practice: LinkedPractice, client_id: int) -> Client:
    with as_app(world, practice) as session:
        return session.scalars(select(Client).where(Client.id == client_id)).one()


def _bakkers(world: SyncWorld, practice: LinkedPractice) -> int:
    with as_app(world, practice) as session:
        return len(session.scalars(select(Client.id).where(Client.last_name.like("Bakker%"))).all())


def test_animana_mode_creates_the_client_in_animana_first_and_the_row_carries_its_id(
    animana_world: SyncWorld,
):
    practice = animana_world.practices[0]
    with animana_world.client() as client:
        client_id = _register(animana_world, practice, client)
        row = _row(animana_world, practice, client_id)
        assert row.animana_id is not None and not row.writeback_pending
        relation = client.get(practice.animana_id, "relations", int(row.animana_id))
        assert (relation.last_name, relation.first_name, relation.street, relation.house_number) == (
            "Bakker", "Joost", "Lange Nieuwstraat", "7B",
        )  # fmt: skip
        assert (relation.postcode, relation.city, relation.phone, relation.email) == (
            "3512 PD", "Utrecht", "+31611223344", "joost@bakker.nl",
        )  # fmt: skip
        # A contact edit goes the same way: Animana holds the new number when the edit is saved here.
        with _desk(animana_world, practice, client) as session:
            edit_contact(
                session, Actor.at(None, practice.practice_id, {"receptionist"}), practice_id=practice.practice_id,
                client_id=client_id, master_key=MASTER_KEY,
                contact=Contact(street="Lange Nieuwstraat", house_number="7B", postcode="3512 PD", city="Utrecht",
                                phone="030 234 5678", email="joost@bakker.nl", preferred_channel="email"),
            )  # fmt: skip
        assert client.get(practice.animana_id, "relations", int(row.animana_id)).phone == "+31302345678"
    assert [e["state"] for e in outbox(animana_world, practice)] == ["done", "done"]


def test_animana_s_refusal_names_the_form_field_and_nothing_is_saved(animana_world: SyncWorld):
    practice = animana_world.practices[0]
    # Our client table takes 150 characters of last name; Animana's relations take 120.
    long_name = NewClient(last_name="Bakker-" + "x" * 125, contact=BAKKER.contact)
    with animana_world.client() as client, pytest.raises(UpstreamRefused) as refused:
        _register(animana_world, practice, client, long_name)
    assert refused.value.field == "last_name"
    assert "last_name" in refused.value.fields
    assert _bakkers(animana_world, practice) == 0
    assert outbox(animana_world, practice) == []


def test_hybrid_mode_commits_here_and_leaves_an_outbox_entry(animana_world: SyncWorld):
    practice = animana_world.practices[0]
    set_modes(animana_world, practice, "hybrid", ("clients",))
    with animana_world.client() as client:
        client_id = _register(animana_world, practice, client)
    row = _row(animana_world, practice, client_id)
    assert row.animana_id is None and row.writeback_pending
    entries = outbox(animana_world, practice)
    assert [(e["table_name"], e["row_id"], e["operation"], e["state"]) for e in entries] == [
        ("client", client_id, "insert", "pending")
    ]


def test_native_mode_sends_nothing(animana_world: SyncWorld):
    practice = animana_world.practices[0]
    set_modes(animana_world, practice, "native", ("clients",))
    with animana_world.client() as client:
        client_id = _register(animana_world, practice, client)
    row = _row(animana_world, practice, client_id)
    assert row.animana_id is None and not row.writeback_pending
    assert outbox(animana_world, practice) == []
