"""The client's generic writes against the simulator with faults on: a lost answer retried with the caller's key
has one effect, a one-attempt policy leaves the retry to the caller, and (hypothesis) any sequence of writes with
repeated keys leaves Animana holding exactly what a model of the API says."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.animana import (
    AnimanaClient,
    ApiUnavailable,
    NotFound,
    RateLimited,
    RetryPolicy,
    ValidationFailed,
    WriteAnswer,
)
from tests.connectors.animana.animana_support import make_client
from tests.connectors.animana.write_support import write_bodies

ONE_ATTEMPT = RetryPolicy(attempts=1)


def test_a_lost_answer_is_retried_with_the_same_key_and_has_one_effect(new_sim):
    sim = new_sim(seed=7, practices=1, response_lost=1.0)
    with make_client(sim) as client:
        body = write_bodies(client, 1001)["relations"]
        before = client.counts(1001)["relations"]
        created = client.create(1001, "relations", body, idempotency_key="lost-create")
        rid = created.record["id"]
        updated = client.update(1001, "relations", rid, {"city": "Zeist"}, idempotency_key="lost-update")
        deleted = client.delete(
            1001, "relations", rid, idempotency_key="lost-delete", if_match=updated.version
        )
        # Every answer was lost once (the write committed), then given again to the retry under its key.
        stats = sim.stats()
        assert (stats["writes"], stats["response_lost"], stats["idempotent_replays"]) == (3, 3, 3)
        assert created.version < updated.version < deleted.version and updated.record["city"] == "Zeist"
        assert client.counts(1001)["relations"] == before
        assert [i.id for i in client.iter_records(1001, "relations", updated_since=created.version)] == [rid]


def test_one_attempt_leaves_the_retry_to_the_caller(new_sim):
    sim = new_sim(seed=7, practices=1, response_lost=1.0)
    with make_client(sim) as client:
        body = write_bodies(client, 1001)["relations"]
        before = client.counts(1001)["relations"]
        with pytest.raises(ApiUnavailable) as caught:
            client.create(1001, "relations", body, idempotency_key="once", retry=ONE_ATTEMPT)
        assert caught.value.status_code == 502
        assert client.counts(1001)["relations"] == before + 1  # committed although the answer was lost
        again = client.create(1001, "relations", body, idempotency_key="once", retry=ONE_ATTEMPT)
        assert client.get(1001, "relations", again.record["id"]).last_name == body["last_name"]
        assert client.counts(1001)["relations"] == before + 1

        sim.configure(response_lost=0.0, rate_limit=1, rate_window=60)
        client.counts(1001)  # the window's one request
        with pytest.raises(RateLimited) as limited:
            client.create(1001, "relations", body, idempotency_key="limited", retry=ONE_ATTEMPT)
        assert 0 < limited.value.retry_after <= 60
        sim.configure(rate_limit=0, faults=1.0, fault_kinds=["error_503"])
        requests = sim.stats()["requests"]
        with pytest.raises(ApiUnavailable) as unavailable:
            client.create(1001, "relations", body, idempotency_key="down", retry=ONE_ATTEMPT)
        assert unavailable.value.status_code == 503 and sim.stats()["requests"] == requests + 1
        sim.configure(faults=0.0)
        assert client.counts(1001)["relations"] == before + 1


def test_one_attempt_survives_an_expired_token(new_sim):
    sim = new_sim(seed=7, practices=1)
    with make_client(sim) as client:
        body = write_bodies(client, 1001)["relations"]
        sim.simulator.expire_tokens()
        answer = client.create(1001, "relations", body, idempotency_key="fresh-token", retry=ONE_ATTEMPT)
        assert answer.record["last_name"] == body["last_name"]
        assert sim.stats()["tokens"] == 2


def test_writes_through_every_fault_have_one_effect_each(new_sim):
    sim = new_sim(
        seed=7,
        practices=1,
        faults=0.3,
        fault_kinds=("error_500", "error_503", "truncate"),
        response_lost=0.3,
        rate_limit=40,
        rate_window=1.0,
        fault_seed=11,
    )
    with make_client(sim) as client:
        body = write_bodies(client, 1001)["relations"]
        before = client.counts(1001)["relations"]
        answers = [
            client.create(
                1001, "relations", {**body, "last_name": f"Klant {n}"}, idempotency_key=f"storm-{n}"
            )
            for n in range(30)
        ]
        assert client.counts(1001)["relations"] == before + 30
        assert len({a.record["id"] for a in answers}) == 30
        for n, answer in enumerate(answers):
            assert answer.record["last_name"] == f"Klant {n}"
            assert client.get(1001, "relations", answer.record["id"]).model_dump(mode="json") == answer.record
    stats = sim.stats()
    assert stats["response_lost"] >= 3 and stats["error_500"] + stats["error_503"] + stats["truncate"] >= 3, (
        stats
    )


# -- property: a model of the API ---------------------------------------------------------------------------
KEYS = 4  # a small pool, so keys repeat within a sequence
create = st.tuples(
    st.just("create"), st.integers(0, KEYS - 1), st.sampled_from(["Jansen", "Bakker", "Visser"])
)
update = st.tuples(
    st.just("update"), st.integers(0, 5), st.integers(0, KEYS - 1), st.sampled_from(["Zeist", "Houten"])
)
delete = st.tuples(st.just("delete"), st.integers(0, 5), st.integers(0, KEYS - 1))


class ApiModel:
    """What Animana should hold after each write: the records made in this sequence and the first answer to each key
    (only answers that changed something are kept; a key reused for another request is refused)."""

    def __init__(self) -> None:
        self.records: dict[int, dict[str, Any] | None] = {}  # id -> fields, None once deleted
        self.order: list[int] = []
        self.answers: dict[str, tuple[tuple[Any, ...], WriteAnswer]] = {}

    def send(self, client: AnimanaClient, op: tuple[Any, ...], prefix: str) -> None:
        kind, *args = op
        if kind != "create" and not self.order:
            return
        key = f"{prefix}-{args[-2] if kind == 'update' else args[-1] if kind == 'delete' else args[0]}"
        if kind == "create":
            request: tuple[Any, ...] = ("create", {"last_name": args[1]})
        else:
            rid = self.order[args[0] % len(self.order)]
            request = (kind, rid, {"city": args[2]}) if kind == "update" else (kind, rid)
        first = self.answers.get(key)
        if first is not None and first[0] != request:
            with pytest.raises(ValidationFailed) as caught:
                _call(client, request, key)
            assert set(caught.value.fields) == {"Idempotency-Key"}
            return
        if first is None and kind != "create" and self.records[request[1]] is None:
            with pytest.raises(NotFound):
                _call(client, request, key)
            return
        answer = _call(client, request, key)
        if first is not None:
            assert answer == first[1]  # the first answer, and no second effect
            return
        self.answers[key] = (request, answer)
        if kind == "create":
            self.records[answer.record["id"]] = {"last_name": args[1], "city": None}
            self.order.append(answer.record["id"])
        elif kind == "update":
            self.records[request[1]] = {**self.records[request[1]], "city": args[2]}
        else:
            self.records[request[1]] = None


def _call(client: AnimanaClient, request: tuple[Any, ...], key: str) -> WriteAnswer:
    if request[0] == "create":
        return client.create(1001, "relations", request[1], idempotency_key=key)
    if request[0] == "update":
        return client.update(1001, "relations", request[1], request[2], idempotency_key=key)
    return client.delete(1001, "relations", request[1], idempotency_key=key)


def test_repeated_keys_never_duplicate_and_the_listing_equals_the_model(new_sim):
    sim = new_sim(
        seed=7,
        practices=1,
        response_lost=0.3,
        faults=0.1,
        fault_kinds=("error_503", "truncate"),
        fault_seed=4,
    )
    with make_client(sim) as client:

        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(ops=st.lists(st.one_of(create, update, delete), min_size=1, max_size=12))
        def sequence(ops: list[tuple[Any, ...]]) -> None:
            known = {i.id for i in client.iter_records(1001, "relations")}
            model, prefix = ApiModel(), uuid.uuid4().hex
            for op in ops:
                model.send(client, op, prefix)
            listed = [i for i in client.iter_records(1001, "relations") if i.id not in known]
            assert sorted(i.id for i in listed) == sorted(model.records)  # one record per effect, no more
            for item in listed:
                expected = model.records[item.id]
                if expected is None:
                    assert item.deleted
                else:
                    assert not item.deleted and (item.last_name, item.city) == (
                        expected["last_name"],
                        expected["city"],
                    )

        sequence()
    assert sim.stats()["response_lost"] > 0 and sim.stats()["idempotent_replays"] > 0
