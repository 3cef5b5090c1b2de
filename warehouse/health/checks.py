"""One function per check: each judges the facts (``facts.py``) against its threshold (``thresholds.py``) and
returns a :class:`Check`. A check that cannot judge (the database is down) fails rather than passes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum

from warehouse.health.facts import Facts, Queue
from warehouse.health.thresholds import Threshold, Thresholds

NO_THRESHOLD = Threshold(warn=None, fail=None)


class Status(IntEnum):
    """Ordered, so the worst of several is their max; the value is the metric's and the CLI's exit code."""

    OK = 0
    WARN = 1
    FAIL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    value: float | None  # in ``unit``; None when there is nothing to measure
    unit: str  # seconds | entries | practices | listeners
    threshold: Threshold
    detail: str


def grade(value: float | None, threshold: Threshold) -> Status:
    if value is None:
        return Status.OK
    if threshold.fail is not None and value >= threshold.fail:
        return Status.FAIL
    if threshold.warn is not None and value >= threshold.warn:
        return Status.WARN
    return Status.OK


def duration(seconds: float) -> str:
    """A coarse, readable age for details: ``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _age(facts: Facts, moment: dt.datetime | None) -> float | None:
    return None if moment is None else max(0.0, (facts.now - moment).total_seconds())


def _unreadable(name: str, facts: Facts, unit: str, threshold: Threshold) -> Check:
    return Check(name, Status.FAIL, None, unit, threshold, "not checked: the database is unreachable")


def database(facts: Facts) -> Check:
    """Up, and at the migration head the code expects."""
    if facts.database is None:
        return Check(
            "database", Status.FAIL, None, "revision", NO_THRESHOLD, f"unreachable: {facts.database_error}"
        )
    db = facts.database
    if db.revision != db.head:
        detail = f"schema at {db.revision or 'empty'}, the code needs {db.head}: run `vetconnect db migrate`"
        return Check("database", Status.FAIL, None, "revision", NO_THRESHOLD, detail)
    return Check("database", Status.OK, None, "revision", NO_THRESHOLD, f"up, schema at {db.revision} (head)")


def animana(facts: Facts) -> Check:
    """Every linked practice answers an authenticated GET with our token."""
    threshold = Threshold(warn=None, fail=1)
    if facts.database is None:
        return _unreadable("animana", facts, "practices", threshold)
    if not facts.database.linked:
        return Check("animana", Status.OK, 0, "practices", threshold, "no practice is linked to Animana")
    if facts.animana is None:
        return Check("animana", Status.FAIL, len(facts.database.linked), "practices", threshold,
                     "Animana is not configured (VETCONNECT_ANIMANA_URL, _CLIENT_ID, _CLIENT_SECRET)")  # fmt: skip
    failing = {code: why for code, why in facts.animana.items() if why is not None}
    if not failing:
        return Check("animana", Status.OK, 0, "practices", threshold,
                     f"{len(facts.animana)} linked practice(s) answer with a valid token")  # fmt: skip
    detail = "; ".join(f"{code}: {why}" for code, why in sorted(failing.items()))
    return Check("animana", grade(len(failing), threshold), len(failing), "practices", threshold, detail)


def sync_lag(facts: Facts, thresholds: Thresholds) -> Check:
    """The oldest last sync among the modules Animana still feeds (linked practices, not native)."""
    threshold = thresholds.sync_lag_s
    if facts.database is None:
        return _unreadable("sync_lag", facts, "seconds", threshold)
    fed = [m for m in facts.database.modules if m.linked and m.mode != "native"]
    if not fed:
        return Check("sync_lag", Status.OK, None, "seconds", threshold, "no module is synced from Animana")
    never = [f"{m.practice_code}/{m.module}" for m in fed if m.last_sync is None]
    if never:
        return Check("sync_lag", Status.FAIL, None, "seconds", threshold, "never synced: " + ", ".join(never))
    lags = sorted(
        ((_age(facts, m.last_sync) or 0.0, f"{m.practice_code}/{m.module}") for m in fed), reverse=True
    )
    worst = lags[0][0]
    late = [f"{where} {duration(lag)}" for lag, where in lags if grade(lag, threshold) > Status.OK]
    detail = ("behind: " + ", ".join(late[:5])) if late else f"{len(fed)} module(s), worst {duration(worst)}"
    return Check("sync_lag", grade(worst, threshold), worst, "seconds", threshold, detail)


def _oldest(queues: list[Queue]) -> dt.datetime | None:
    return min((q.oldest for q in queues if q.oldest is not None), default=None)


def _queue_age(name: str, facts: Facts, queues: list[Queue], threshold: Threshold, what: str) -> Check:
    """A queue a person works: its value is the oldest entry's age; the detail counts per practice."""
    count = sum(q.count for q in queues)
    if not count:
        return Check(name, Status.OK, 0, "seconds", threshold, f"no {what}")
    age = _age(facts, _oldest(queues)) or 0.0
    per_practice = ", ".join(f"{q.practice_code} {q.count}" for q in queues)
    detail = f"{count} {what}, oldest {duration(age)} ({per_practice})"
    return Check(name, grade(age, threshold), age, "seconds", threshold, detail)


def writeback_outbox(facts: Facts, thresholds: Thresholds) -> Check:
    """Entries waiting to be sent: the oldest pending one's age fails, the depth (pending + held) warns."""
    threshold = thresholds.outbox_oldest_pending_s
    if facts.database is None:
        return _unreadable("writeback_outbox", facts, "seconds", threshold)
    pending = [q for q in facts.database.outbox if q.kind == "pending"]
    depth = sum(q.count for q in facts.database.outbox if q.kind in ("pending", "held"))
    age = _age(facts, _oldest(pending))
    status = max(grade(age, threshold), grade(depth, thresholds.outbox_depth))
    oldest = f", oldest pending {duration(age)}" if age is not None else ""
    return Check("writeback_outbox", status, age or 0.0, "seconds", threshold, f"{depth} waiting{oldest}")


def dead_letters(facts: Facts, thresholds: Thresholds) -> Check:
    if facts.database is None:
        return _unreadable("dead_letters", facts, "seconds", thresholds.dead_letter_age_s)
    dead = [q for q in facts.database.outbox if q.kind == "dead"]
    return _queue_age("dead_letters", facts, dead, thresholds.dead_letter_age_s, "dead letter(s)")


def conflicts(facts: Facts, thresholds: Thresholds) -> Check:
    if facts.database is None:
        return _unreadable("conflicts", facts, "seconds", thresholds.conflict_age_s)
    return _queue_age(
        "conflicts", facts, facts.database.conflicts, thresholds.conflict_age_s, "open conflict(s)"
    )


def device_inbox(facts: Facts, thresholds: Thresholds) -> Check:
    if facts.database is None:
        return _unreadable("device_inbox", facts, "seconds", thresholds.device_inbox_age_s)
    return _queue_age("device_inbox", facts, facts.database.device_inbox, thresholds.device_inbox_age_s,
                      "unmatched device message(s)")  # fmt: skip


def mllp_listener(facts: Facts) -> Check | None:
    """Each configured listener accepts a TCP connection; None when none is configured."""
    if not facts.mllp:
        return None
    threshold = Threshold(warn=None, fail=1)
    down = {address: why for address, why in facts.mllp.items() if why is not None}
    detail = "; ".join(f"{a}: {why}" for a, why in sorted(down.items())) or f"{len(facts.mllp)} listening"
    return Check("mllp_listener", grade(len(down), threshold), len(down), "listeners", threshold, detail)


def backup(facts: Facts, thresholds: Thresholds) -> Check:
    threshold = thresholds.backup_age_s
    if facts.backup is None:
        return Check(
            "backup", Status.FAIL, None, "seconds", threshold, f"no backup yet in {facts.backups_dir}"
        )
    age = _age(facts, facts.backup.finished_at) or 0.0
    detail = f"{facts.backup.kind} backup {facts.backup.label}, {duration(age)} old"
    return Check("backup", grade(age, threshold), age, "seconds", threshold, detail)


def all_checks(facts: Facts, thresholds: Thresholds) -> list[Check]:
    found = [
        database(facts),
        animana(facts),
        sync_lag(facts, thresholds),
        writeback_outbox(facts, thresholds),
        dead_letters(facts, thresholds),
        conflicts(facts, thresholds),
        device_inbox(facts, thresholds),
        mllp_listener(facts),
        backup(facts, thresholds),
    ]
    return [c for c in found if c is not None]
