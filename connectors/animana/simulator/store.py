"""In-memory store of generated practices: sorted rows for cheap cursor pagination, a logical clock for
changes, and a bounded cache that regenerates evicted practices by replaying their change journal.

Why a journal: medium x 20 practices (2M+ rows) do not fit comfortably in memory at once, so practices are
evicted. Mutations and writes must survive eviction, and because generation and every change are
deterministic, replaying the journal on a regenerated practice gives back exactly the same state.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.animana.resources.registry import RESOURCE_ORDER

from .clock import TS_FORMAT, UTC, ts
from .config import GeneratorConfig
from .generator import generate_practice, practice_ids, practice_info
from .practice_changes import change_roster_and_reminders
from .world import Record


class Row:
    """A record plus its sort key. The key is the server's, not read from the payload, so injected
    malformed payloads (tests) can still be placed and paginated."""

    __slots__ = ("deleted", "id", "payload", "ts")

    def __init__(self, ts_: str, id_: int, payload: Any, deleted: bool = False) -> None:
        self.ts = ts_
        self.id = id_
        self.payload = payload
        self.deleted = deleted

    @property
    def key(self) -> tuple[str, int]:
        return (self.ts, self.id)


def _row_key(row: Row) -> tuple[str, int]:
    return (row.ts, row.id)


def encode_cursor(key: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}|{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Raise ValueError for anything that is not a cursor this server issued."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = text.partition("|")
        dt.datetime.strptime(stamp, TS_FORMAT)
        return stamp, int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


class PracticeStore:
    def __init__(self, practice_id: int, data: dict[str, list[Record]], anchor: dt.datetime) -> None:
        self.practice_id = practice_id
        self.rows: dict[str, list[Row]] = {}
        self.by_id: dict[str, dict[int, Row]] = {}
        self.live: dict[str, int] = {}
        self.next_id: dict[str, int] = {}
        latest = ts(anchor)
        for resource in RESOURCE_ORDER:
            rows = sorted((Row(r["updated_at"], r["id"], r) for r in data[resource]), key=_row_key)
            self.rows[resource] = rows
            self.by_id[resource] = {row.id: row for row in rows}
            self.live[resource] = len(rows)
            self.next_id[resource] = max((row.id for row in rows), default=0) + 1
            if rows and rows[-1].ts > latest:
                latest = rows[-1].ts
        self.clock = dt.datetime.strptime(latest, TS_FORMAT).replace(tzinfo=UTC)
        # Idempotency-Key -> the first answer to it: (what was asked, HTTP status, record answered).
        self.idempotency: dict[str, Answer] = {}
        # Edits made as an Animana user would (POST /_sim/edit and the concurrent editor), oldest first.
        self.edits: list[dict[str, Any]] = []

    # -- reading -------------------------------------------------------------------------------------
    def page(
        self,
        resource: str,
        *,
        updated_since: str | None,
        cursor: tuple[str, int] | None,
        limit: int,
    ) -> tuple[list[Any], str | None]:
        rows = self.rows[resource]
        if cursor is not None:
            start = bisect.bisect_right(rows, cursor, key=_row_key)
        elif updated_since is not None:
            # Strictly after: every change gets its own clock tick, so "> last seen" loses nothing.
            start = bisect.bisect_right(rows, (updated_since, 2**62), key=_row_key)
        else:
            start = 0
        chunk = rows[start : start + limit]
        more = start + limit < len(rows)
        next_cursor = encode_cursor(chunk[-1].key) if chunk and more else None
        return [row.payload for row in chunk], next_cursor

    def get(self, resource: str, record_id: int) -> Any | None:
        row = self.by_id[resource].get(record_id)
        return None if row is None or row.deleted else row.payload

    def counts(self) -> dict[str, int]:
        return dict(self.live)

    def high_water(self) -> str:
        return ts(self.clock)

    # -- changing ------------------------------------------------------------------------------------
    def tick(self) -> str:
        self.clock += dt.timedelta(seconds=1)
        return ts(self.clock)

    def _place(self, resource: str, row: Row) -> None:
        """Give the row a fresh timestamp and move it to the end (it is now the newest change)."""
        rows = self.rows[resource]
        if row.id in self.by_id[resource]:
            index = bisect.bisect_left(rows, row.key, key=_row_key)
            if index < len(rows) and rows[index] is row:
                del rows[index]
        row.ts = self.tick()
        rows.append(row)
        self.by_id[resource][row.id] = row

    def update(self, resource: str, record_id: int, changes: dict[str, Any]) -> Record:
        row = self.by_id[resource][record_id]
        self._place(resource, row)
        row.payload = {**row.payload, **changes, "updated_at": row.ts}
        return row.payload

    def insert(self, resource: str, payload: dict[str, Any]) -> Record:
        record_id = self.next_id[resource]
        self.next_id[resource] += 1
        row = Row("", record_id, None)
        self._place(resource, row)
        row.payload = {"id": record_id, **payload, "updated_at": row.ts, "deleted": False}
        self.live[resource] += 1
        return row.payload

    def delete(self, resource: str, record_id: int) -> Record:
        row = self.by_id[resource][record_id]
        if not row.deleted:
            self.live[resource] -= 1
        self._place(resource, row)
        row.deleted = True
        row.payload = {"id": record_id, "updated_at": row.ts, "deleted": True}
        return row.payload

    def inject(self, resource: str, raws: list[Any]) -> list[int]:
        """Append payloads exactly as given (filling id/updated_at only when absent): a test hook for
        malformed data, which real upstream systems do send now and then."""
        ids = []
        for raw in raws:
            record_id = self.next_id[resource]
            self.next_id[resource] += 1
            row = Row("", record_id, None)
            self._place(resource, row)
            if isinstance(raw, dict):
                raw = {"id": record_id, "updated_at": row.ts, **raw}
            row.payload = raw
            self.live[resource] += 1
            ids.append(record_id)
        return ids

    def live_ids(self, resource: str) -> list[int]:
        return [
            row_id
            for row_id, row in self.by_id[resource].items()
            if not row.deleted and isinstance(row.payload, dict)
        ]

    def mutate(
        self,
        *,
        edits: int,
        cancellations: int,
        deletions: int,
        seed: int,
        shift_changes: int = 0,
        reminder_changes: int = 0,
    ) -> dict[str, Any]:
        """Deterministic given the arguments and the store's state: the same call sequence on the same
        seed always changes the same records in the same way."""
        rng = random.Random(f"mutate:{seed}:{self.practice_id}")
        changed: dict[str, list[dict[str, Any]]] = {"edited": [], "cancelled": [], "deleted": []}
        for _ in range(edits):
            resource = rng.choices(["relations", "animals", "staff"], weights=[55, 40, 5])[0]
            ids = self.live_ids(resource)
            if not ids:
                continue
            record_id = rng.choice(ids)
            self.update(resource, record_id, _edit(rng, resource, self.by_id[resource][record_id].payload))
            changed["edited"].append({"resource": resource, "id": record_id})
        booked = sorted(
            (row.payload["start"], row.id)
            for row in self.by_id["agenda"].values()
            if not row.deleted and isinstance(row.payload, dict) and row.payload.get("status") == "booked"
        )
        for _, record_id in rng.sample(booked, min(cancellations, len(booked))):
            self.update("agenda", record_id, {"status": "cancelled"})
            changed["cancelled"].append({"resource": "agenda", "id": record_id})
        for _ in range(deletions):
            resource = rng.choices(["agenda", "relations", "animals"], weights=[50, 25, 25])[0]
            ids = self.live_ids(resource)
            if ids:
                record_id = rng.choice(ids)
                self.delete(resource, record_id)
                changed["deleted"].append({"resource": resource, "id": record_id})
        roster = change_roster_and_reminders(
            self, shift_changes=shift_changes, reminder_changes=reminder_changes, seed=seed
        )
        for kind, entries in roster.items():
            changed[kind] += entries
        return {**changed, "high_water": self.high_water()}


def _edit(rng: random.Random, resource: str, payload: dict[str, Any]) -> dict[str, Any]:
    if resource == "relations":
        choice = rng.randrange(4)
        if choice == 0:
            return {"phone": f"06-{rng.randint(10000000, 99999999)}"}
        if choice == 1:
            local = (payload.get("email") or "klant@example.nl").split("@")[0]
            return {"email": f"{local}@{rng.choice(['gmail.com', 'outlook.com', 'ziggo.nl'])}"}
        if choice == 2:  # moved house within town
            letters = rng.choice("ABCDEGHJKLMNPRTVWXZ") + rng.choice("ABCDEGHJKLMNPRTVWXZ")
            postcode = str(payload.get("postcode") or "3500 AA")[:2] + f"{rng.randint(0, 99):02d} {letters}"
            return {"house_number": str(rng.randint(1, 240)), "postcode": postcode}
        return {"active": not payload.get("active", True)}
    if resource == "animals":
        choice = rng.randrange(3)
        gender = str(payload.get("gender", "male"))
        if choice == 0 and not gender.startswith("neutered_"):
            return {"gender": f"neutered_{gender}"}
        if choice == 1 and payload.get("chip_number") is None:
            return {"chip_number": "528" + f"{rng.randrange(10**12):012d}"}
        return {"colour": rng.choice(["zwart", "bruin", "grijs", "wit", "rood"])}
    return {"active": not payload.get("active", True)}


@dataclass(frozen=True)
class Operation:
    """One journaled change; replayed in order on a regenerated practice."""

    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Answer:
    """The first answer to an Idempotency-Key. `request` fingerprints what was asked (method, resource, id,
    body), so the key reused for a different write is recognised and refused instead of answered wrongly."""

    request: str
    status: int
    record: Record


class PracticeCache:
    """Bounded LRU of generated practices plus the journal that makes eviction lossless."""

    def __init__(self, config: GeneratorConfig, practice_count: int, max_practices: int = 2) -> None:
        self.config = config
        self.ids = practice_ids(practice_count)
        self.max_practices = max(1, max_practices)
        self._cache: OrderedDict[int, PracticeStore] = OrderedDict()
        self._journal: dict[int, list[Operation]] = {pid: [] for pid in self.ids}
        self._locks = {pid: threading.Lock() for pid in self.ids}
        self._cache_lock = threading.Lock()
        self.generations = 0  # how many times a practice was (re)generated; tests check the cache bound

    def practices(self) -> list[Record]:
        return [practice_info(self.config.seed, pid) for pid in self.ids]

    def __contains__(self, practice_id: int) -> bool:
        return practice_id in self._locks

    def run(
        self, practice_id: int, fn: Callable[[PracticeStore], Any], journal: Operation | None = None
    ) -> Any:
        """Run fn against the practice under its lock; journal the operation when it changes state."""
        with self._locks[practice_id]:
            store = self._get(practice_id)
            result = fn(store)
            if journal is not None:
                self._journal[practice_id].append(journal)
            return result

    def journal(self, practice_id: int, op: Operation) -> None:
        """Append to the journal; call only from inside `run` (the practice lock is held)."""
        self._journal[practice_id].append(op)

    def _get(self, practice_id: int) -> PracticeStore:
        with self._cache_lock:
            store = self._cache.get(practice_id)
            if store is not None:
                self._cache.move_to_end(practice_id)
                return store
        store = PracticeStore(practice_id, generate_practice(self.config, practice_id), self.config.anchor)
        for op in self._journal[practice_id]:
            replay(store, op)
        with self._cache_lock:
            self.generations += 1
            self._cache[practice_id] = store
            while len(self._cache) > self.max_practices:
                self._cache.popitem(last=False)
        return store

    def cached(self) -> list[int]:
        with self._cache_lock:
            return list(self._cache)


def replay(store: PracticeStore, op: Operation) -> Any:
    if op.name == "mutate":
        return store.mutate(**op.args[0])
    if op.name == "inject":
        return store.inject(*op.args)
    if op.name == "insert":
        resource, payload, key, request = op.args
        return _answered(store, key, request, 201, store.insert(resource, payload))
    if op.name == "update":
        resource, record_id, changes, key, request = op.args
        return _answered(store, key, request, 200, store.update(resource, record_id, changes))
    if op.name == "delete":
        resource, record_id, key, request = op.args
        return _answered(store, key, request, 200, store.delete(resource, record_id))
    if op.name == "edit":
        resource, record_id, changes, origin = op.args
        record = store.update(resource, record_id, changes)
        store.edits.append(
            {
                "resource": resource,
                "id": record_id,
                "fields": changes,
                "at": record["updated_at"],
                "origin": origin,
            }
        )
        return record
    raise ValueError(f"unknown operation {op.name}")


def _answered(store: PracticeStore, key: str | None, request: str, status: int, record: Record) -> Record:
    if key:
        store.idempotency[key] = Answer(request, status, record)
    return record
