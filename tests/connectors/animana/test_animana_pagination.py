"""Cursor pagination, the page-size cap, updated_since after mutations, resuming, and writes."""

from __future__ import annotations

import datetime as dt
import gc

import httpx
import pytest

from connectors.animana import Conflict, NotFound, ValidationFailed
from connectors.animana.errors import AnimanaError
from connectors.animana.models import Tombstone
from connectors.animana.resources.agenda import Appointment, AppointmentCreate, AppointmentUpdate
from connectors.animana.resources.relations import RelationCreate, RelationUpdate
from tests.connectors.animana.animana_support import dump, make_client


def test_full_stream_is_the_union_of_pages_without_duplicates(client):
    whole = [dump(i) for i in client.iter_records(1001, "agenda", page_size=500)]
    pages = list(client.iter_pages(1001, "agenda", page_size=7))
    assert len(pages) > 5
    assert all(len(p.items) <= 7 for p in pages)
    stitched = [dump(i) for p in pages for i in p.items]
    assert stitched == whole
    ids = [r["id"] for r in stitched]
    assert len(ids) == len(set(ids))
    keys = [(r["updated_at"], r["id"]) for r in stitched]
    assert keys == sorted(keys)
    assert pages[-1].next_cursor is None and all(p.next_cursor for p in pages[:-1])


def test_page_size_is_capped(new_sim):
    sim = new_sim(seed=7, practices=1, max_page_size=40)
    with make_client(sim) as client:
        pages = list(client.iter_pages(1001, "agenda", page_size=10_000))
    assert max(len(p.items) for p in pages) == 40
    assert sum(len(p.items) for p in pages) == client_total(sim, "agenda")


def client_total(sim, resource):
    with make_client(sim) as client:
        return client.counts(1001)[resource]


def test_resume_from_a_committed_cursor(client):
    pages = client.iter_pages(1001, "consults", page_size=20)
    first, second = next(pages), next(pages)
    pages.close()
    resumed = list(client.iter_records(1001, "consults", page_size=20, start_cursor=second.next_cursor))
    everything = list(client.iter_records(1001, "consults", page_size=20))
    assert first.items + second.items + resumed == everything


def test_updated_since_returns_exactly_what_a_mutation_changed(new_sim):
    # cache_practices=1 forces eviction between calls: the journal must bring the changes back.
    sim = new_sim(seed=7, practices=2, cache_practices=1)
    with make_client(sim) as client:
        high_water = {
            r: max(i.updated_at for i in client.iter_records(1001, r))
            for r in ("relations", "animals", "staff", "agenda")
        }
        result = sim.mutate(1001, edits=6, cancellations=2, deletions=4, seed=3)
        client.counts(1002)  # evicts 1001
        changed: dict[str, set[int]] = {}
        for kind in ("edited", "cancelled", "deleted"):
            for entry in result[kind]:
                changed.setdefault(entry["resource"], set()).add(entry["id"])
        for resource, since in high_water.items():
            items = list(client.iter_records(1001, resource, updated_since=since))
            assert {i.id for i in items} == changed.get(resource, set()), resource
        deleted = {(e["resource"], e["id"]) for e in result["deleted"]}
        for resource, record_id in deleted:
            [item] = [
                i
                for i in client.iter_records(1001, resource, updated_since=high_water[resource])
                if i.id == record_id
            ]
            assert isinstance(item, Tombstone)
        cancelled = [
            i
            for i in client.iter_records(1001, "agenda", updated_since=high_water["agenda"])
            if isinstance(i, Appointment)
        ]
        assert {i.id for i in cancelled if i.status == "cancelled"} >= {e["id"] for e in result["cancelled"]}
        # Counts exclude tombstones.
        live = sum(1 for i in client.iter_records(1001, "agenda") if not isinstance(i, Tombstone))
        assert client.counts(1001)["agenda"] == live


def test_mutation_is_deterministic(new_sim):
    results = []
    for _ in range(2):
        sim = new_sim(seed=7, practices=1)
        results.append(sim.mutate(1001, edits=5, cancellations=1, deletions=2, seed=42))
    assert results[0] == results[1]


def test_bad_cursor_and_unknown_resources(client):
    with pytest.raises(AnimanaError) as caught:
        list(client.iter_records(1001, "agenda", start_cursor="not-a-cursor"))
    assert caught.value.status_code == 400
    with pytest.raises(ValueError, match="unknown Animana resource"):
        list(client.iter_records(1001, "patients"))
    with pytest.raises(NotFound):
        client.counts(9999)
    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.iter_records(1001, "agenda", updated_since=dt.datetime(2024, 1, 1)))


def test_writes_validate_and_show_up_in_the_next_sync(sim, client):
    practice = 1004  # the practice this suite writes to
    since = max(i.updated_at for i in client.iter_records(practice, "agenda"))
    animal = next(i for i in client.iter_records(practice, "animals") if not i.deceased)
    vet = next(i for i in client.iter_records(practice, "staff") if i.role == "vet")
    start = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)  # before opening hours: no generated clash
    created = client.create_appointment(
        practice,
        AppointmentCreate(
            type="consult",
            start=start,
            end=start + dt.timedelta(minutes=15),
            resource_type="staff",
            resource_id=vet.id,
            animal_id=animal.id,
            relation_id=animal.relation_ids[0],
            reason="jeuk",
        ),
    )
    assert created.status == "booked"
    with pytest.raises(Conflict, match=f"overlaps appointment {created.id}"):
        client.create_appointment(
            practice,
            AppointmentCreate(
                type="consult",
                start=start + dt.timedelta(minutes=5),
                end=start + dt.timedelta(minutes=20),
                resource_type="staff",
                resource_id=vet.id,
                animal_id=animal.id,
                relation_id=animal.relation_ids[0],
            ),
        )
    moved = client.update_appointment(practice, created.id, AppointmentUpdate(status="cancelled"))
    assert moved.status == "cancelled" and moved.updated_at > created.updated_at
    synced = list(client.iter_records(practice, "agenda", updated_since=since))
    assert [i.id for i in synced] == [created.id]

    with pytest.raises(ValidationFailed) as caught:
        client.create_appointment(
            practice,
            AppointmentCreate(
                type="consult",
                start=start,
                end=start + dt.timedelta(minutes=15),
                resource_type="staff",
                resource_id=vet.id,
                animal_id=999_999,
                relation_id=animal.relation_ids[0],
            ),
        )
    assert set(caught.value.fields) == {"animal_id"}
    with pytest.raises(NotFound):
        client.update_appointment(practice, 999_999, AppointmentUpdate(status="done"))

    relation = client.create_relation(
        practice, RelationCreate(last_name="de Vries", postcode="3581 AB", email="a.devries@example.nl")
    )
    assert client.update_relation(practice, relation.id, RelationUpdate(city="Utrecht")).city == "Utrecht"
    with pytest.raises(ValidationFailed) as caught:
        client.create_relation(practice, RelationCreate(last_name="Bakker", iban="NL00INGB0000000001"))
    assert "iban" in caught.value.fields


def test_retried_write_is_applied_once(sim, client):
    token = httpx.post(
        f"{sim.base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key-twice"}
    url = f"{sim.base_url}/v1/practices/1004/relations"
    before = client.counts(1004)["relations"]
    first = httpx.post(url, json={"last_name": "Smit"}, headers=headers)
    second = httpx.post(url, json={"last_name": "Smit"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert client.counts(1004)["relations"] == before + 1


def test_read_pages_leave_no_response_for_the_garbage_collector(client):
    """The sync's workers collect garbage rarely (connectors.animana.sync.processes), so a page's HTTP response, body
    and all, must be freed by reference counting once the page is dropped, not wait in a reference cycle."""
    gc.collect()
    gc.disable()
    try:
        for page in client.iter_pages(1001, "agenda", page_size=50, wire=True):
            assert page.items
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, httpx.Response)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
