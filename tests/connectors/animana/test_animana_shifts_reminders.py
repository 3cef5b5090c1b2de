"""The work schedules (``shifts``) and the practice's own reminders (``reminders``) are served like every other
listing: cursor pages, updated_since, tombstones, counts; generated from the seed alone; and they tell the same
story as the agenda and the clinical record. Read over raw HTTP: the client has no models for them yet."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.animana.simulator import DEFAULT_ANCHOR, GeneratorConfig, RunningSimulator, generate_practice
from connectors.animana.simulator.store import Operation, PracticeCache, PracticeStore, replay

NEW = ("shifts", "reminders")


class Raw:
    """A bare HTTP reader of the simulator's API: a token, GETs, and following next_cursor."""

    def __init__(self, sim: RunningSimulator) -> None:
        self.http = httpx.Client(base_url=sim.base_url, timeout=30)
        form = {
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
        }
        token = self.http.post("/oauth/token", data=form).raise_for_status().json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def pages(self, practice: int, resource: str, **params: Any) -> Iterator[list[dict]]:
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            body = self.get(f"/v1/practices/{practice}/{resource}", **query).raise_for_status().json()
            yield body["data"]
            cursor = body["next_cursor"]
            if cursor is None:
                return

    def records(self, practice: int, resource: str, **params: Any) -> list[dict]:
        return [record for page in self.pages(practice, resource, **params) for record in page]

    def counts(self, practice: int) -> dict[str, int]:
        return self.get(f"/v1/practices/{practice}/counts").raise_for_status().json()["counts"]


@pytest.fixture
def raw(sim: RunningSimulator) -> Iterator[Raw]:
    with Raw(sim) as reader:
        yield reader


@pytest.mark.parametrize("resource", NEW)
def test_served_in_cursor_pages_that_add_up_to_the_counts(raw, resource):
    whole = raw.records(1001, resource, limit=500)
    pages = list(raw.pages(1001, resource, limit=37))
    assert len(pages) > 1 and all(len(page) <= 37 for page in pages)
    stitched = [record for page in pages for record in page]
    assert stitched == whole
    assert len({r["id"] for r in stitched}) == len(stitched)
    assert [(r["updated_at"], r["id"]) for r in stitched] == sorted(
        (r["updated_at"], r["id"]) for r in stitched
    )
    assert raw.counts(1001)[resource] == len(whole)
    one = whole[len(whole) // 2]
    assert raw.get(f"/v1/practices/1001/{resource}/{one['id']}").json() == one


def test_wire_shapes(raw):
    shift = raw.records(1002, "shifts", limit=1)[0]
    assert set(shift) == {"id", "updated_at", "deleted", "staff_id", "date", "start", "end"}
    assert dt.datetime.fromisoformat(shift["start"]).date().isoformat() == shift["date"]
    assert dt.datetime.fromisoformat(shift["end"]) > dt.datetime.fromisoformat(shift["start"])
    reminder = raw.records(1002, "reminders", limit=1)[0]
    assert set(reminder) == {
        "id", "updated_at", "deleted", "created_at", "animal_id", "relation_id", "kind", "vaccination_id",
        "description", "due_on", "channel", "status", "sent_at",
    }  # fmt: skip


def test_updated_since_returns_the_changed_shifts_and_reminders_with_tombstones(new_sim):
    # cache_practices=1: the practice is evicted between the change and the read, so the journal replays it.
    sim = new_sim(seed=7, practices=2, cache_practices=1)
    with Raw(sim) as raw:
        before = {r: raw.records(1001, r, limit=500) for r in NEW}
        counts_before = raw.counts(1001)
        high_water = {r: max(x["updated_at"] for x in records) for r, records in before.items()}
        result = sim.mutate(1001, shift_changes=8, reminder_changes=8, seed=3)
        raw.counts(1002)  # evicts 1001
        changed: dict[str, set[int]] = {}
        for kind in ("edited", "cancelled", "deleted"):
            for entry in result[kind]:
                changed.setdefault(entry["resource"], set()).add(entry["id"])
        assert set(changed) == set(NEW)
        deleted = {(e["resource"], e["id"]) for e in result["deleted"]}
        assert {r for r, _ in deleted} == set(NEW)
        for resource in NEW:
            since = raw.records(1001, resource, updated_since=high_water[resource], limit=3)
            assert {r["id"] for r in since} == changed[resource]
            assert all(r["updated_at"] > high_water[resource] for r in since)
            for record in since:
                if (resource, record["id"]) in deleted:
                    assert record == {"id": record["id"], "updated_at": record["updated_at"], "deleted": True}
                    assert raw.get(f"/v1/practices/1001/{resource}/{record['id']}").status_code == 404
            gone = sum(1 for r, _ in deleted if r == resource)
            assert raw.counts(1001)[resource] == counts_before[resource] - gone
        by_id = {r["id"]: r for r in raw.records(1001, "reminders", limit=500)}
        for entry in result["cancelled"]:
            assert by_id[entry["id"]]["status"] == "cancelled"


def test_writes_are_refused(raw):
    """The werkrooster and the reminders are read, never written, by VetConnect."""
    for resource in NEW:
        response = raw.http.post(f"/v1/practices/1004/{resource}", json={})
        assert response.status_code == 405


def test_same_seed_same_data_over_http(raw, new_sim):
    with Raw(new_sim(seed=7, practices=4)) as other:
        # Asked in the other order: per-stream generators make the answer independent of it.
        theirs = {r: other.records(1003, r, limit=500) for r in reversed(NEW)}
    assert {r: raw.records(1003, r, limit=500) for r in NEW} == theirs


def test_same_seed_same_data_and_the_journal_replays_the_changes():
    config = GeneratorConfig(seed=9)
    first, again = generate_practice(config, 1002), generate_practice(config, 1002)
    assert {r: first[r] for r in NEW} == {r: again[r] for r in NEW}
    other = generate_practice(GeneratorConfig(seed=10), 1002)
    assert first["shifts"] != other["shifts"] and first["reminders"] != other["reminders"]

    cache = PracticeCache(config, practice_count=2, max_practices=1)
    op = Operation("mutate", ({"edits": 0, "cancellations": 0, "deletions": 0, "seed": 4,
                               "shift_changes": 5, "reminder_changes": 5},))  # fmt: skip
    cache.run(1001, lambda s: replay(s, op), journal=op)

    def snapshot(store: PracticeStore) -> dict[str, list]:
        return {r: store.page(r, updated_since=None, cursor=None, limit=10**6)[0] for r in NEW}

    changed = cache.run(1001, snapshot)
    cache.run(1002, lambda s: s.counts())  # evicts 1001
    assert cache.run(1001, snapshot) == changed


def test_roster_changes_leave_the_other_mutations_as_they_were():
    data = generate_practice(GeneratorConfig(seed=7), 1001)
    plain = PracticeStore(1001, data, DEFAULT_ANCHOR)
    data = generate_practice(GeneratorConfig(seed=7), 1001)
    with_roster = PracticeStore(1001, data, DEFAULT_ANCHOR)
    counts = {"edits": 6, "cancellations": 2, "deletions": 4, "seed": 3}
    base = plain.mutate(**counts)
    more = with_roster.mutate(**counts, shift_changes=4, reminder_changes=4)
    for kind in ("edited", "cancelled", "deleted"):
        assert [e for e in more[kind] if e["resource"] not in NEW] == base[kind]


@pytest.fixture(scope="module")
def world() -> dict[str, list[dict]]:
    return generate_practice(GeneratorConfig(seed=11, scale="medium", history_years=0.5), 1001)


def test_every_appointment_falls_in_a_shift_of_its_vet(world):
    shifts = {}
    for shift in world["shifts"]:
        key = (shift["staff_id"], shift["date"])
        assert key not in shifts  # one shift per staff member per day
        shifts[key] = (dt.datetime.fromisoformat(shift["start"]), dt.datetime.fromisoformat(shift["end"]))
    appointments = [
        a for a in world["agenda"] if a["resource_type"] == "staff" and a["status"] != "cancelled"
    ]
    assert appointments
    for a in appointments:
        start, end = dt.datetime.fromisoformat(a["start"]), dt.datetime.fromisoformat(a["end"])
        starts, ends = shifts[(a["resource_id"], start.date().isoformat())]
        assert starts <= start and end <= ends, a


def test_the_roster_looks_like_a_dutch_practice(world):
    anchor_day = DEFAULT_ANCHOR.date()
    days = Counter(dt.date.fromisoformat(s["date"]).weekday() for s in world["shifts"])
    assert days[6] == 0  # closed on Sundays
    assert days[5] < min(
        days[d] for d in range(5)
    )  # Saturday mornings rotate (but vets with patients come in)
    assert dt.date(2026, 4, 27).isoformat() not in {s["date"] for s in world["shifts"]}  # Koningsdag
    assert all(s["updated_at"] <= DEFAULT_ANCHOR.strftime("%Y-%m-%dT%H:%M:%SZ") for s in world["shifts"])
    # Everyone has a share of the roster, part-timers less; the last day planned is six weeks ahead.
    per_staff = Counter(s["staff_id"] for s in world["shifts"])
    assert set(per_staff) == {s["id"] for s in world["staff"]}
    assert max(s["date"] for s in world["shifts"]) >= (anchor_day + dt.timedelta(days=35)).isoformat()
    leaver = next(s for s in world["staff"] if not s["active"])
    assert (
        max(s["date"] for s in world["shifts"] if s["staff_id"] == leaver["id"]) <= leaver["updated_at"][:10]
    )


def test_reminders_follow_from_the_record(world):
    animals = {a["id"]: a for a in world["animals"]}
    vaccinations = {v["id"]: v for v in world["vaccinations"]}
    relations = {r["id"] for r in world["relations"]}
    anchor = DEFAULT_ANCHOR.strftime("%Y-%m-%dT%H:%M:%SZ")
    kinds = Counter(r["kind"] for r in world["reminders"])
    assert kinds["vaccination"] == len(vaccinations)  # one per vaccination: its booster
    assert kinds["check-up"] > 0 and kinds["other"] > 0
    assert Counter(r["status"] for r in world["reminders"]).keys() == {"open", "sent", "cancelled"}
    assert {r["channel"] for r in world["reminders"]} == {"email", "sms", "letter"}
    assert any(r["relation_id"] is None for r in world["reminders"])
    for r in world["reminders"]:
        assert r["animal_id"] in animals
        assert r["relation_id"] is None or r["relation_id"] in relations
        assert r["created_at"] <= r["updated_at"] <= anchor
        assert (r["status"] == "sent") == (r["sent_at"] is not None)
        if r["kind"] == "vaccination":
            vaccination = vaccinations[r["vaccination_id"]]
            assert (vaccination["animal_id"], vaccination["due_on"]) == (r["animal_id"], r["due_on"])
            assert r["description"] == vaccination["vaccine"]
        else:
            assert r["vaccination_id"] is None and r["description"]
        if r["status"] == "open":
            assert r["due_on"] > anchor[:10]


def test_a_demo_started_on_sunday_has_its_staff_at_work():
    sunday = dt.datetime(2026, 12, 6, 14, 30, tzinfo=dt.UTC)
    world = generate_practice(GeneratorConfig(seed=7, anchor=sunday), 1001)
    today = [s for s in world["shifts"] if s["date"] == "2026-12-06"]
    assert any(s["end"] > "2026-12-06T13:00" for s in today)  # a weekday's hours, not Saturday morning's
    assert not [s for s in world["shifts"] if s["date"] == "2026-12-13"]  # next Sunday: closed
