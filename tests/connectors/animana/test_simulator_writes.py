"""The simulator's write side over real HTTP: every writable resource created in the wire shape the listing serves,
versions and conditional writes, idempotency keys for every method, refusals, Animana-side edits, and writes that
survive the cache's eviction."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.animana import Conflict, NotFound, PreconditionFailed, ValidationFailed
from connectors.animana.models import RejectedRecord, Tombstone
from connectors.animana.simulator import RunningSimulator, running_simulator
from tests.connectors.animana.animana_support import SECRET, make_client
from tests.connectors.animana.write_support import WRITABLE, RawWrites, write_bodies


@pytest.fixture(scope="module")
def writable() -> Iterator[RunningSimulator]:
    """A one-practice simulator of this module's own: its tests add records."""
    with running_simulator(seed=7, practices=1, client_secret=SECRET) as running:
        yield running


def _listing(raw: RawWrites, path: str, **params: str) -> list[dict]:
    response = raw.send("GET", path, params={"limit": "500", **params})
    response.raise_for_status()
    return response.json()["data"]


@pytest.mark.parametrize("resource", WRITABLE)
def test_a_created_record_is_listed_and_served_with_its_version(writable, resource):
    raw = RawWrites(writable)
    with make_client(writable) as client:
        body = write_bodies(client, 1001, slot=WRITABLE.index(resource))[resource]
        generated = _listing(raw, f"1001/{resource}")[0]
        since = client.counts(1001)  # live totals before the write
        answer = client.create(1001, resource, body, idempotency_key=f"create-{resource}")
        record = answer.record
        assert answer.version == record["updated_at"]
        for field, value in body.items():  # what was sent is what is stored (Animana fills in the rest)
            if isinstance(value, dict):
                assert record[field] == {**record[field], **value}
            elif field != "lines":
                assert record[field] == value, field
        # The wire shape of a generated record: the same fields, so the sync reads it back like any other.
        assert set(record) == set(generated)
        single = raw.send("GET", f"1001/{resource}/{record['id']}")
        assert single.headers["etag"] == f'"{answer.version}"' and single.json() == record
        newest = _listing(raw, f"1001/{resource}", updated_since=answer.version)
        assert newest == []  # nothing after it ...
        assert _listing(raw, f"1001/{resource}")[-1] == record  # ... and it is the newest change
        parsed = client.get(1001, resource, record["id"])
        assert not isinstance(parsed, RejectedRecord | Tombstone), parsed
        assert client.counts(1001)[resource] == since[resource] + 1


def test_animana_fills_in_what_it_owns(writable):
    with make_client(writable) as client:
        bodies = write_bodies(client, 1001, slot=20)
        invoice = client.create(1001, "invoices", bodies["invoices"], idempotency_key="fill-invoice").record
        line = invoice["lines"][0]
        assert (line["line_total_cents"], line["vat_cents"]) == (2500, 225)  # 2 x 12.50, 9 % VAT
        assert (invoice["total_excl_vat_cents"], invoice["vat_cents"], invoice["total_cents"]) == (
            2500,
            225,
            2725,
        )
        assert invoice["number"].startswith("1001-2026-") and line["product_id"] > 0
        consult = client.create(1001, "consults", bodies["consults"], idempotency_key="fill-consult").record
        assert consult["relation_id"] in bodies["animals"]["relation_ids"]
        assert consult["soap"]["objective"] == "" and consult["soap"]["plan"] == "zalf, controle over 2 weken"
        # A SOAP part sent on its own replaces that part only.
        patched = client.update(
            1001, "consults", consult["id"], {"soap": {"assessment": "otitis"}}, idempotency_key="soap-a"
        ).record
        assert patched["soap"] == {**consult["soap"], "assessment": "otitis"}
        payment = client.create(1001, "payments", bodies["payments"], idempotency_key="fill-payment").record
        assert payment["relation_id"] is not None


def test_invalid_writes_name_their_fields(writable):
    with make_client(writable) as client:
        bodies = write_bodies(client, 1001, slot=30)
        refused = {
            "animal_id": ("vaccinations", {**bodies["vaccinations"], "animal_id": 999_999}),
            "vet_id": ("consults", {**bodies["consults"], "vet_id": 999_999}),
            "due_on": ("vaccinations", {**bodies["vaccinations"], "due_on": "2026-01-01"}),
            "gender": ("animals", {**bodies["animals"], "gender": "mannetje"}),
            "amount_cents": ("payments", {**bodies["payments"], "amount_cents": 0}),
            "invoice_id": ("payments", {**bodies["payments"], "invoice_id": 999_999}),
            "product_code": ("prescriptions", {**bodies["prescriptions"], "product_code": "NOPE"}),
            "lines.0.line_total_cents": (
                "invoices",
                {**bodies["invoices"], "lines": [{**bodies["invoices"]["lines"][0], "line_total_cents": 1}]},
            ),
            "relation_ids": ("animals", {**bodies["animals"], "relation_ids": [999_999]}),
            "given_on": ("vaccinations", {**bodies["vaccinations"], "given_on": 20261102}),
        }
        before = client.counts(1001)
        for field, (resource, body) in refused.items():
            with pytest.raises(ValidationFailed) as caught:
                client.create(1001, resource, body, idempotency_key=f"bad-{field}")
            assert set(caught.value.fields) == {field}, (field, caught.value.fields)
        relation = client.create(1001, "relations", bodies["relations"], idempotency_key="bad-base").record
        with pytest.raises(ValidationFailed) as caught:
            client.update(1001, "relations", relation["id"], {"last_name": None}, idempotency_key="bad-null")
        assert caught.value.fields == {"last_name": "may not be null"}
        assert client.counts(1001) == {**before, "relations": before["relations"] + 1}


def test_stale_if_match_is_412_with_the_current_record(writable):
    raw = RawWrites(writable)
    with make_client(writable) as client:
        body = write_bodies(client, 1001)["relations"]
        first = client.create(1001, "relations", body, idempotency_key="v-create")
        rid = first.record["id"]
        second = client.update(
            1001, "relations", rid, {"city": "Zeist"}, idempotency_key="v1", if_match=first.version
        )
        assert second.version > first.version and second.record["city"] == "Zeist"
        with pytest.raises(PreconditionFailed) as caught:
            client.update(
                1001, "relations", rid, {"city": "Bunnik"}, idempotency_key="v2", if_match=first.version
            )
        assert caught.value.current == second.record and caught.value.status_code == 412
        bare = raw.send("PATCH", f"1001/relations/{rid}", {"city": "Houten"}, If_Match=first.version)
        assert bare.status_code == 412 and bare.json()["error"] == "precondition_failed"
        assert bare.headers["etag"] == f'"{second.version}"'
        with pytest.raises(PreconditionFailed):
            client.delete(1001, "relations", rid, idempotency_key="d1", if_match=first.version)
        assert client.get(1001, "relations", rid).city == "Zeist"  # refused writes changed nothing
        gone = client.delete(1001, "relations", rid, idempotency_key="d2", if_match=second.version)
        assert gone.record == {"id": rid, "updated_at": gone.version, "deleted": True}
        with pytest.raises(NotFound):
            client.get(1001, "relations", rid)
        changes = [
            i.model_dump(mode="json")
            for i in client.iter_records(1001, "relations", updated_since=second.version)
        ]
        assert changes == [gone.record]  # the listing shows the deletion as a tombstone


def test_a_key_gives_its_first_answer_and_one_effect_for_every_method(writable):
    raw = RawWrites(writable)
    with make_client(writable) as client:
        body = write_bodies(client, 1001)["relations"]
        before = client.counts(1001)["relations"]
        answers = [raw.send("POST", "1001/relations", body, Idempotency_Key="once-post") for _ in range(3)]
        assert {a.status_code for a in answers} == {201} and answers[0].json() == answers[2].json()
        assert client.counts(1001)["relations"] == before + 1
        rid = answers[0].json()["id"]
        patched = [
            raw.send("PATCH", f"1001/relations/{rid}", {"city": "Zeist"}, Idempotency_Key="once-patch")
        ]
        # Even with a version that is stale by now, a retry gets the first answer, not a 412.
        patched.append(
            raw.send(
                "PATCH",
                f"1001/relations/{rid}",
                {"city": "Zeist"},
                Idempotency_Key="once-patch",
                If_Match="old",
            )
        )
        assert [p.status_code for p in patched] == [200, 200] and patched[0].json() == patched[1].json()
        deleted = [
            raw.send("DELETE", f"1001/relations/{rid}", Idempotency_Key="once-delete") for _ in range(2)
        ]
        assert [d.status_code for d in deleted] == [200, 200] and deleted[0].json() == deleted[1].json()
        assert raw.send("DELETE", f"1001/relations/{rid}", Idempotency_Key="another").status_code == 404
        reused = raw.send("POST", "1001/relations", {**body, "city": "Zeist"}, Idempotency_Key="once-post")
        assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
        assert client.counts(1001)["relations"] == before


def test_refused_writes_change_nothing_and_are_counted(new_sim):
    sims = [new_sim(seed=7, practices=1, refuse_writes=1.0, fault_seed=5) for _ in range(2)]
    outcomes = []
    for sim in sims:
        with make_client(sim) as client:
            bodies = write_bodies(client, 1001)
            before = client.counts(1001)
            seen = []
            for resource in WRITABLE:
                with pytest.raises((ValidationFailed, Conflict)) as caught:
                    client.create(1001, resource, bodies[resource], idempotency_key=f"refused-{resource}")
                if isinstance(caught.value, ValidationFailed):
                    (field,) = caught.value.fields  # a real field of the body
                    assert field in bodies[resource]
                    seen.append((resource, 422, field))
                else:
                    seen.append((resource, 409, None))
            assert client.counts(1001) == before
            assert sim.stats()["refused"] == len(WRITABLE)
            outcomes.append(seen)
            sim.configure(refuse_writes=0.0)  # judged afresh: the refusal was not kept under the key
            client.create(1001, "relations", bodies["relations"], idempotency_key="refused-relations")
            assert client.counts(1001)["relations"] == before["relations"] + 1
    assert outcomes[0] == outcomes[1]  # the same fault seed refuses the same way
    assert {status for _, status, _ in outcomes[0]} == {409, 422}


def test_an_edit_made_in_animana_is_a_new_version(writable):
    with make_client(writable) as client:
        created = client.create(
            1001, "relations", write_bodies(client, 1001)["relations"], idempotency_key="edit-base"
        )
        rid = created.record["id"]
        edited = writable.edit(1001, "relations", rid, {"phone": "06-87654321"})
        assert edited["updated_at"] > created.version and edited["phone"] == "06-87654321"
        with pytest.raises(PreconditionFailed) as caught:
            client.update(
                1001, "relations", rid, {"city": "Zeist"}, idempotency_key="e1", if_match=created.version
            )
        assert caught.value.current == edited
        assert writable.edits(1001)[-1] == {
            "resource": "relations",
            "id": rid,
            "fields": {"phone": "06-87654321"},
            "at": edited["updated_at"],
            "origin": "admin",
        }
        bad = httpx.post(
            f"{writable.base_url}/_sim/edit",
            json={"practice": 1001, "resource": "relations", "id": rid, "fields": {"postcode": "nope"}},
        )
        assert bad.status_code == 422 and set(bad.json()["fields"]) == {"postcode"}


def test_the_concurrent_editor_edits_what_was_just_written(new_sim):
    sim = new_sim(seed=7, practices=1, concurrent_edits=1.0, fault_seed=3)
    with make_client(sim) as client:
        bodies = write_bodies(client, 1001)
        written = {r: client.create(1001, r, bodies[r], idempotency_key=f"ce-{r}") for r in WRITABLE}
        edits = sim.edits(1001)
        # Invoices are never edited; every other write was followed by an edit of the same record.
        assert [(e["resource"], e["id"], e["origin"]) for e in edits] == [
            (r, written[r].record["id"], "concurrent") for r in WRITABLE if r != "invoices"
        ]
        assert sim.stats()["concurrent_edits"] == len(edits)
        for edit in edits:
            now = client.get(1001, edit["resource"], edit["id"]).model_dump(mode="json")
            answered = written[edit["resource"]]
            assert now["updated_at"] == edit["at"] > answered.version  # the answer's version is stale at once
            changed = {f for f in edit["fields"] if now[f] != answered.record[f]}
            assert changed == set(edit["fields"]), edit


def test_writes_edits_and_keys_survive_eviction(new_sim):
    sim = new_sim(seed=7, practices=2, cache_practices=1)
    raw = RawWrites(sim)
    with make_client(sim) as client:
        bodies = write_bodies(client, 1001)
        created = {r: client.create(1001, r, bodies[r], idempotency_key=f"ev-{r}") for r in WRITABLE}
        rid = created["relations"].record["id"]
        client.update(1001, "relations", rid, {"city": "Zeist"}, idempotency_key="ev-update")
        client.delete(1001, "payments", created["payments"].record["id"], idempotency_key="ev-delete")
        sim.edit(1001, "agenda", created["agenda"].record["id"], {"reason": "hoest"})
        before = {r: _listing(raw, f"1001/{r}") for r in WRITABLE}
        edits = sim.edits(1001)
        generations = sim.stats()["generations"]
        client.counts(1002)  # practice 1001 leaves the cache ...
        assert sim.stats()["cached_practices"] == [1002]
        assert {r: _listing(raw, f"1001/{r}") for r in WRITABLE} == before  # ... and comes back the same
        assert sim.stats()["generations"] == generations + 2
        assert sim.edits(1001) == edits
        again = client.create(1001, "relations", bodies["relations"], idempotency_key="ev-relations")
        assert again == created["relations"]  # the key's first answer was kept through the replay
