"""With faults on (5xx, slow pages, truncated bodies, 429s, expiring tokens) the client streams exactly what
it streams with faults off; Retry-After is honoured and capped; auth refreshes once, then fails."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.animana import (
    RESOURCE_ORDER,
    AnimanaClient,
    ApiUnavailable,
    AuthError,
    InvalidResponse,
    RateLimited,
    RetryPolicy,
    load_settings,
)
from tests.connectors.animana.animana_support import FAST, SECRET, make_client, stream_all


def test_faulty_api_streams_the_same_records(sim, new_sim):
    with make_client(sim) as calm:
        baseline = stream_all(calm, 1001, page_size=25)
    stormy = new_sim(
        seed=7,
        practices=4,
        faults=0.2,
        slow_seconds=0.05,
        rate_limit=12,
        rate_window=1.0,
        token_ttl=0.7,
        fault_seed=1,
    )
    with make_client(stormy, page_size=25) as client:
        assert stream_all(client, 1001) == baseline
        counts = client.counts(1001)
        assert {r: counts[r] for r in baseline} == {r: len(v) for r, v in baseline.items()}
    stats = stormy.stats()
    faults = {kind: stats[kind] for kind in ("error_500", "error_503", "slow", "truncate")}
    # Each kind has its own test below; here it is enough that several kinds hit this stream.
    assert sum(faults.values()) >= 5 and sum(1 for n in faults.values() if n) >= 2, stats
    assert stats["rate_limited"] > 0
    assert stats["tokens"] > 1  # short-lived tokens were renewed along the way


def test_truncated_bodies_are_retried(new_sim):
    sim = new_sim(seed=7, practices=1, faults=0.3, fault_kinds=("truncate",), fault_seed=2)
    with make_client(sim) as client:
        records = list(client.iter_records(1001, "invoices", page_size=10))
    assert len(records) == client_total(sim)
    assert sim.stats()["truncate"] > 0


def client_total(sim):
    sim.configure(faults=0.0)
    with make_client(sim) as client:
        return client.counts(1001)["invoices"]


def test_always_truncated_gives_up_with_invalid_response(new_sim):
    sim = new_sim(seed=7, practices=1)
    retry = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    with make_client(sim, retry=retry) as client:
        client.counts(1001)  # get a token while the API still behaves
        sim.configure(faults=1.0, fault_kinds=["truncate"])
        with pytest.raises(InvalidResponse, match="not valid JSON"):
            client.counts(1001)


def test_persistent_5xx_raises_api_unavailable(new_sim):
    sim = new_sim(seed=7, practices=1, faults=1.0, fault_kinds=("error_500",))
    retry = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    with make_client(sim, retry=retry) as client, pytest.raises(ApiUnavailable) as caught:
        client.practices()
    assert caught.value.status_code == 500
    assert sim.stats()["error_500"] == 3


def test_slow_pages_past_the_read_timeout_are_retried(new_sim):
    sim = new_sim(seed=7, practices=1, faults=0.3, fault_kinds=("slow",), slow_seconds=0.6, fault_seed=3)
    with make_client(sim, read_timeout=0.25) as client:
        assert len(list(client.iter_records(1001, "agenda", page_size=20))) > 0
    assert sim.stats()["slow"] > 0
    sim.configure(faults=1.0)
    retry = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    with (
        make_client(sim, retry=retry, read_timeout=0.25) as client,
        pytest.raises(ApiUnavailable, match="timed out"),
    ):
        client.practices()


def test_retry_after_is_honoured(new_sim):
    sim = new_sim(seed=7, practices=1, rate_limit=2, rate_window=1.0)
    with make_client(sim) as client:
        client.practices()  # the token call counts in another bucket; requests 1 and 2 pass
        client.practices()
        started = time.monotonic()
        client.practices()  # limited: server says Retry-After: 1
        waited = time.monotonic() - started
    assert sim.stats()["rate_limited"] >= 1
    assert waited >= 1.0


def test_retry_after_is_capped(new_sim):
    sim = new_sim(seed=7, practices=1, rate_limit=1, rate_window=30.0)
    retry = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, max_retry_after=0.3)
    with make_client(sim, retry=retry) as client:
        client.practices()
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            client.practices()
        waited = time.monotonic() - started
    assert caught.value.retry_after == pytest.approx(30, abs=1)
    assert 0.6 <= waited < 5  # two capped waits of 0.3 s, not two of 30 s


def test_expired_token_is_refreshed_once(new_sim):
    sim = new_sim(seed=7, practices=1)
    with make_client(sim) as client:
        client.practices()
        httpx.post(f"{sim.base_url}/_sim/expire_tokens")
        assert client.counts(1001)["agenda"] > 0
    assert sim.stats()["tokens"] == 2


def test_token_refused_twice_is_an_auth_error(new_sim):
    sim = new_sim(seed=7, practices=1, token_ttl=0.0001)  # every token is expired on arrival
    with make_client(sim) as client, pytest.raises(AuthError, match="still unauthorized") as caught:
        client.counts(1001)
    assert caught.value.error_code == "token_expired"


def test_wrong_secret_is_not_retried(new_sim):
    sim = new_sim(seed=7, practices=1)
    settings = load_settings(url=sim.base_url, client_id=sim.client_id, client_secret="wrong-" + SECRET)
    with AnimanaClient(settings, retry=FAST) as client, pytest.raises(AuthError, match="invalid_client"):
        client.practices()
    assert sim.stats()["requests"] == 1


def test_unreachable_server_is_api_unavailable():
    settings = load_settings(
        url="http://127.0.0.1:9", client_id="x", client_secret="y" * 8, connect_timeout=0.2
    )
    retry = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    with (
        AnimanaClient(settings, retry=retry) as client,
        pytest.raises(ApiUnavailable, match="connection failed"),
    ):
        client.practices()


def test_concurrent_streams_match_sequential(sim, client):
    jobs = [(p, r) for p in (1001, 1002, 1003) for r in ("agenda", "consults", "invoices", "relations")]
    expected = {job: [i.model_dump() for i in client.iter_records(*job, page_size=30)] for job in jobs}
    got: dict = {job: [] for job in jobs}
    for page in client.iter_many(jobs, max_workers=4, max_buffered_pages=2):
        got[(page.practice_id, page.resource)] += [i.model_dump() for i in page.items]
    assert got == expected
    assert set(RESOURCE_ORDER) >= {r for _, r in jobs}


def test_concurrent_stream_raises_the_first_error(client):
    with pytest.raises(Exception, match="9999"):
        list(client.iter_many([(1001, "agenda"), (9999, "agenda")], max_workers=2))
