"""Settling Animana changes that arrived for rows with an unacknowledged local change (held by the
``writeback_hold`` trigger, migration 0380; since 0620 only those that touch a column the row's open entries are
sending — the loader takes the others itself): per field, never a silent revert.

For each held row, against the value both sides last agreed on (the ``base`` of the row's first open outbox entry
that changed the field):

- changed only in Animana → applied here;
- changed only here → kept (the outbox still carries it to Animana);
- the same value on both sides → agreed;
- Animana holds a value of one of our entries already handed to it (`WritebackHanded`) → our own write come back
  (applied, its answer lost or not yet recorded): ours stays. Unless that entry goes again as the one request it
  was handed over as (`outbox.note_handed`): its answer will tell whether Animana took it — replayed, or refused as
  stale — so the row is deferred, held as it is until then. The same value from an entry never handed over is an Animana
  user's edit that happens to match, and is decided as below;
- changed on both sides → the field's rule (`rules`, declared in the resource's spec) decides and the decision is
  recorded with both values; without a rule, or when the rule cannot tell, the field goes to a person: an open
  conflict, and the row's outbox entries are held until it is resolved.

Afterwards the row agrees with Animana's version (``animana_version``), so a write-back of what was kept is a
conditional write against the version just seen.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.integration.capture import bookkeeping, written_as
from warehouse.integration.rules import FieldClash, RuleBook
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import FieldCipher

# Not data: keys, bookkeeping, and values derived from another column (a blind index follows its ciphertext).
# ``cancelled_at`` follows the status: Animana has no such field, the loader derives it from the record's updated_at
# on a cancellation, and it is never written back (so comparing it would set two clocks against each other).
NOT_COMPARED = frozenset(
    {"practice_id", "id", "animana_id", "created_at", "updated_at", "animana_version", "writeback_pending",
     "email_bidx", "phone_bidx", "key_version", "cancelled_at"}
)  # fmt: skip
# Encrypted columns (AES-GCM is randomised: equal values have different ciphertexts) → their cipher field.
ENCRYPTED = {"email_enc": "email", "phone_enc": "phone", "address_enc": "address", "iban_enc": "iban"}
# Applied together with the encrypted column they index.
DERIVED = {"email_enc": ("email_bidx", "key_version"), "phone_enc": ("phone_bidx", "key_version")}
OPEN_STATES = ("pending", "held", "dead")
# The held "change" of a record Animana deleted while it had a local change here (``writeback_hold`` on DELETE),
# and the conflict field a person decides it by: delete it here too, or keep it and create it in Animana again.
DELETED = "deleted_in_animana"


@dataclass
class SettleReport:
    rows: int = 0
    fields_applied: int = 0
    auto_resolved: int = 0  # conflicts a rule decided completely
    conflicts_opened: int = 0
    deferred: int = 0  # held until an entry's re-send tells whether Animana's value is ours
    rules_used: dict[str, int] = field(default_factory=dict)


@dataclass
class _Row:
    table: str
    row_id: int
    incoming: dict[str, Any]
    version: str | None


class FieldValues:
    """Compares two stored values of one column as a person would: decrypted, timestamps as instants."""

    def __init__(
        self, session: Session, practice_id: int, master_key: bytes | None, cipher: FieldCipher | None = None
    ) -> None:
        self._session, self._practice_id, self._master_key = session, practice_id, master_key
        self._cipher = cipher

    def clear(self, column: str, value: Any) -> Any:
        if column in ENCRYPTED and isinstance(value, str) and value.startswith("\\x"):
            if self._cipher is None:
                if self._master_key is None:
                    raise ValueError("settling encrypted columns needs the master key")
                self._cipher = practice_cipher(self._session, self._practice_id, self._master_key)
            return self._cipher.decrypt(ENCRYPTED[column], bytes.fromhex(value[2:]))
        if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return value
        return value

    def same(self, column: str, a: Any, b: Any) -> bool:
        return a == b or self.clear(column, a) == self.clear(column, b)


def settle(
    session: Session,
    practice_id: int,
    rules_by_table: Mapping[str, RuleBook],
    *,
    master_key: bytes | None = None,
    cipher: FieldCipher | None = None,
) -> SettleReport:
    """Settle every held Animana change of the practice (see the module's docstring), in this transaction. The
    practice's cipher (or the master key to get it) reads encrypted fields to compare them."""
    held = session.execute(
        text(
            "DELETE FROM writeback_incoming WHERE practice_id = :p "
            "RETURNING table_name, row_id, incoming, animana_version"
        ),
        {"p": practice_id},
    ).all()
    report = SettleReport()
    if not held:
        return report
    # The planner's defaults (nested loops, plan_cache_mode auto), whatever the transaction set before: the loader
    # plans without nested loops and with generic plans (its bulk statements need that, `LOAD_SETTINGS`). These
    # statements touch a few rows by key: planned that way they hash-join whole partitions, and so do the triggers
    # they fire. Measured on 4 medium practices: an UPDATE of 19 appointments 21 ms (a scan of 21,218 rows), the
    # search trigger of a 2-client UPDATE 17 ms; with the defaults, index lookups.
    values = FieldValues(session, practice_id, master_key, cipher)
    with written_as(session, "writeback", enable_nestloop="on", plan_cache_mode="auto"):
        for table in sorted({r.table_name for r in held}):
            rows = [
                _Row(table, r.row_id, r.incoming, r.animana_version) for r in held if r.table_name == table
            ]
            _settle_table(session, practice_id, table, rows, rules_by_table.get(table, {}), values, report)
    return report


@dataclass
class _Writes:
    """What settling one table's held rows writes, gathered while deciding so that each kind is one statement
    however many rows a sync held: every statement on a mirrored table fires its audit, search and mart triggers
    once, and a statement per row made settlement cost ~5 ms a row."""

    settled: list[tuple[int, str | None, bool]] = field(
        default_factory=list
    )  # row id, version, still pending
    applied: dict[int, dict[str, Any]] = field(default_factory=dict)  # row id → Animana's values taken
    entries: list[tuple[int, str]] = field(default_factory=list)  # outbox entry id → what it still sends
    conflicts: list[tuple[int, str, str | None]] = field(
        default_factory=list
    )  # open conflict → fields, version
    recorded: list[tuple[int, str, str, str | None]] = field(
        default_factory=list
    )  # row id, state, fields, version
    hold: list[int] = field(default_factory=list)  # rows whose pending entries wait for a person
    deferred: list[_Row] = field(default_factory=list)  # held again, untouched (see the module docstring)


def _settle_table(
    session: Session,
    practice_id: int,
    table: str,
    held: list[_Row],
    rules: RuleBook,
    values: FieldValues,
    report: SettleReport,
) -> None:
    """The held rows of one table: what they need read in three statements, each row decided, and what the
    decisions write in one statement of each kind (`_Writes`)."""
    key = {"p": practice_id, "t": table, "ids": [h.row_id for h in held]}
    current = dict(
        session.execute(
            text(
                f"SELECT id, to_jsonb(t) FROM {table} t WHERE practice_id = :p AND id = ANY(:ids) FOR UPDATE"
            ),
            key,
        ).all()
    )
    entries: dict[int, list[Any]] = {}
    for entry in session.execute(
        text(
            "SELECT o.row_id, o.id, o.state, o.changes, o.base, h.entry_id IS NOT NULL AS handed, "
            "h.request_key IS NOT NULL AS one_request FROM writeback_outbox o LEFT JOIN writeback_handed h "
            "ON h.practice_id = o.practice_id AND h.entry_id = o.id WHERE o.practice_id = :p "
            "AND o.table_name = :t AND o.row_id = ANY(:ids) AND o.state IN ('pending', 'held', 'dead') "
            "ORDER BY o.id FOR UPDATE OF o"
        ),
        key,
    ):
        entries.setdefault(entry.row_id, []).append(entry)
    conflicts = {  # in id order: the newest open conflict of a row wins
        c.row_id: c
        for c in session.execute(
            text(
                "SELECT row_id, id, fields FROM writeback_conflict WHERE practice_id = :p AND table_name = :t "
                "AND row_id = ANY(:ids) AND state = 'open' ORDER BY id FOR UPDATE"
            ),
            key,
        )
    }
    writes = _Writes()
    for row in held:
        if row.row_id not in current:  # deleted here meanwhile: its outbox entry carries the deletion
            continue
        report.rows += 1
        _settle_row(
            row, current[row.row_id], entries.get(row.row_id, []), conflicts.get(row.row_id), rules, values,
            report, writes,
        )  # fmt: skip
    _write(session, practice_id, table, writes)


def _settle_row(
    held: _Row,
    current: dict[str, Any],
    entries: list[Any],
    conflict: Any,
    rules: RuleBook,
    values: FieldValues,
    report: SettleReport,
    writes: _Writes,
) -> None:
    """One held row, decided per field, its writes added to ``writes``."""
    still_open = dict(conflict.fields) if conflict else {}
    if held.incoming.get(DELETED):
        _deleted_upstream(held, conflict, still_open, report, writes)
        return

    base: dict[str, Any] = {}
    # Every value of a column an entry handed to Animana carries (`WritebackHanded`): only those may have arrived;
    # with whether the entry's answer will tell — it goes again (pending) as the one request it was handed over as.
    ours: dict[str, list[tuple[Any, bool]]] = {}
    for entry in entries:
        for column, value in entry.changes.items():
            base.setdefault(column, (entry.base or {}).get(column))
            if entry.handed:
                ours.setdefault(column, []).append((value, entry.state == "pending" and entry.one_request))
    apply: dict[str, Any] = {}
    decided: dict[str, dict[str, Any]] = {}
    for column, animana_value in held.incoming.items():
        if column in NOT_COMPARED or column not in current:
            continue
        local_value = current[column]
        if column in still_open:  # a person is deciding this field: show them Animana's newest value
            still_open[column] = {**still_open[column], "animana": animana_value}
            continue
        if values.same(column, local_value, animana_value):
            continue
        if column not in base:
            apply[column] = animana_value
            continue
        if values.same(column, animana_value, base[column]):
            continue  # Animana did not change it; ours goes out with the outbox
        telling = [
            tells for value, tells in ours.get(column, ()) if values.same(column, animana_value, value)
        ]
        if any(telling):  # ours or an Animana user's: the entry's re-send will tell
            writes.deferred.append(held)
            report.deferred += 1
            return
        if telling:
            continue  # Animana holds one of our own values (applied, its answer not recorded yet): ours stays
        clash = FieldClash(column, local_value, animana_value, base[column], current, held.incoming)
        rule = rules.get(column)
        side = rule.decide(clash) if rule else None
        decided[column] = {
            "local": local_value,
            "animana": animana_value,
            "base": base[column],
            "rule": rule.name if rule and side else None,
            "decided": side,
        }
        if rule and side:
            report.rules_used[rule.name] = report.rules_used.get(rule.name, 0) + 1
        if side == "animana":
            apply[column] = animana_value

    if apply:
        for column in list(apply):  # a blind index and its key version follow their ciphertext
            apply.update({c: held.incoming[c] for c in DERIVED.get(column, ()) if c in held.incoming})
        writes.applied[held.row_id] = apply
    report.fields_applied += len({c for c in apply if c in current and c not in NOT_COMPARED})
    # What Animana now holds for a field is not ours to send again.
    taken = set(apply)
    for entry in entries:
        remaining = {c: v for c, v in entry.changes.items() if c not in taken}
        if remaining != entry.changes:
            writes.entries.append((entry.id, as_json(remaining)))

    open_fields = {c: f for c, f in decided.items() if f["decided"] is None}
    if conflict is not None:
        still_open.update(open_fields)
        writes.conflicts.append((conflict.id, as_json(still_open), held.version))
    if decided:
        auto = {c: f for c, f in decided.items() if f["decided"] is not None}
        if auto:  # the rules' decisions, kept with both values so a person can find them
            writes.recorded.append((held.row_id, "auto_resolved", as_json(auto), held.version))
            report.auto_resolved += 1
        if open_fields and conflict is None:
            writes.recorded.append((held.row_id, "open", as_json(open_fields), held.version))
            report.conflicts_opened += 1
    has_open_conflict = conflict is not None or bool(open_fields)
    if has_open_conflict:
        writes.hold.append(held.row_id)
    still_sending = any(c not in taken for entry in entries for c in entry.changes)
    writes.settled.append((held.row_id, held.version, has_open_conflict or still_sending))


def _deleted_upstream(
    held: _Row, conflict: Any, still_open: dict[str, Any], report: SettleReport, writes: _Writes
) -> None:
    """Animana deleted a record changed here: never decided by a rule — a person deletes it here too or keeps it.
    The row keeps its version (there is no newer one)."""
    field = {"local": "changed here", "animana": "deleted", "base": None, "rule": None, "decided": None}
    if conflict is None:
        writes.recorded.append((held.row_id, "open", as_json({DELETED: field}), held.version))
        report.conflicts_opened += 1
    else:
        writes.conflicts.append((conflict.id, as_json({**still_open, DELETED: field}), None))
    writes.hold.append(held.row_id)


def _write(session: Session, practice_id: int, table: str, writes: _Writes) -> None:
    """Each kind of write of one table's settlement in one statement (see `_Writes`)."""
    if writes.deferred:  # held again as it came
        hold_for_settlement(
            session, practice_id, table, [(r.row_id, r.incoming, r.version) for r in writes.deferred]
        )
    if writes.settled:
        _update_rows(session, practice_id, table, writes)
    if writes.entries:  # an entry left with nothing to send is superseded by what Animana holds
        session.execute(
            text(
                "UPDATE writeback_outbox o SET changes = s.changes, "
                "state = CASE WHEN s.changes = '{}'::jsonb THEN 'superseded' ELSE o.state END "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:changes AS jsonb[])) AS s(id, changes) "
                "WHERE o.practice_id = :p AND o.id = ANY(:ids) AND o.id = s.id"
            ),
            {
                "p": practice_id,
                "ids": [i for i, _ in writes.entries],
                "changes": [c for _, c in writes.entries],
            },
        )
    if writes.conflicts:  # a NULL version: the conflict keeps the one it has (a deletion has no newer one)
        session.execute(
            text(
                "UPDATE writeback_conflict c SET fields = s.fields, "
                "animana_version = coalesce(s.version, c.animana_version) "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:fields AS jsonb[]), CAST(:versions AS text[])) "
                "AS s(id, fields, version) WHERE c.practice_id = :p AND c.id = ANY(:ids) AND c.id = s.id"
            ),
            {
                "p": practice_id,
                "ids": [i for i, _, _ in writes.conflicts],
                "fields": [f for _, f, _ in writes.conflicts],
                "versions": [v for _, _, v in writes.conflicts],
            },
        )
    if writes.recorded:
        session.execute(
            text(
                "INSERT INTO writeback_conflict (practice_id, module, table_name, row_id, animana_id, state, "
                "fields, animana_version, resolved_at) "
                "SELECT :p, :module, :t, s.row_id, r.animana_id, s.state, s.fields, s.version, "
                "CASE WHEN s.state = 'auto_resolved' THEN now() END "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:fields AS jsonb[]), "
                "CAST(:versions AS text[])) WITH ORDINALITY AS s(row_id, state, fields, version, n) "
                f"LEFT JOIN {table} r ON r.practice_id = :p AND r.id = s.row_id ORDER BY s.n"
            ),
            {
                "p": practice_id,
                "module": MIRRORED[table].module,
                "t": table,
                "ids": [r[0] for r in writes.recorded],
                "states": [r[1] for r in writes.recorded],
                "fields": [r[2] for r in writes.recorded],
                "versions": [r[3] for r in writes.recorded],
            },
        )
    if writes.hold:
        session.execute(
            text(
                "UPDATE writeback_outbox SET state = 'held', last_error = 'waiting for a decision on a "
                "conflict' WHERE practice_id = :p AND table_name = :t AND row_id = ANY(:ids) AND state = 'pending'"
            ),
            {"p": practice_id, "t": table, "ids": writes.hold},
        )


def hold_for_settlement(
    session: Session, practice_id: int, table: str, rows: list[tuple[int, dict[str, Any], str | None]]
) -> None:
    """Animana's values of these rows (row id, values, version) held for the next settlement, as the
    ``writeback_hold`` trigger holds a loaded update of a pending row. A hold already waiting for a row is newer
    (the loader's) and stays."""
    session.execute(
        text(
            "INSERT INTO writeback_incoming (practice_id, table_name, row_id, incoming, animana_version) "
            "SELECT :p, :t, s.row_id, s.incoming, s.version FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:incoming AS jsonb[]), CAST(:versions AS text[])) AS s(row_id, incoming, version) "
            "ON CONFLICT (practice_id, table_name, row_id) DO NOTHING"
        ),
        {
            "p": practice_id,
            "t": table,
            "ids": [row_id for row_id, _, _ in rows],
            "incoming": [as_json(values) for _, values, _ in rows],
            "versions": [version for _, _, version in rows],
        },
    )


def _update_rows(session: Session, practice_id: int, table: str, writes: _Writes) -> None:
    """The settled rows' versions and pending flags, and the columns taken from Animana (typed by the table's own
    row type): one UPDATE for the rows that took a column, one for those whose version and flag alone change —
    bookkeeping, which the search-index and mart triggers skip (they read neither; `capture.bookkeeping`)."""
    taking = [s for s in writes.settled if writes.applied.get(s[0])]
    stamping = [s for s in writes.settled if not writes.applied.get(s[0])]
    if taking:
        columns = sorted({c for i, _, _ in taking for c in writes.applied[i]})
        _update(session, practice_id, table, taking, writes, columns)
    if stamping:
        with bookkeeping(session):
            _update(session, practice_id, table, stamping, writes, [])


def _update(
    session: Session,
    practice_id: int,
    table: str,
    rows: list[tuple[int, str | None, bool]],
    writes: _Writes,
    columns: list[str],
) -> None:
    # Animana's values typed by the table's row type once per row (a function in FROM), not once per column.
    assignments = "".join(f"{c} = CASE WHEN s.taken ? '{c}' THEN a.{c} ELSE t.{c} END, " for c in columns)
    typed = f" CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, s.taken) AS a" if columns else ""
    session.execute(
        text(
            f"UPDATE {table} t SET {assignments}animana_version = s.version, writeback_pending = s.pending "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS text[]), CAST(:pending AS boolean[]), "
            f"CAST(:taken AS jsonb[])) AS s(id, version, pending, taken){typed} "
            "WHERE t.practice_id = :p AND t.id = ANY(:ids) AND t.id = s.id"
        ),
        {
            "p": practice_id,
            "ids": [i for i, _, _ in rows],
            "versions": [v for _, v, _ in rows],
            "pending": [b for _, _, b in rows],
            "taken": [as_json(writes.applied.get(i, {})) for i, _, _ in rows],
        },
    )


def as_json(value: Any) -> str:
    return json.dumps(value, default=str)
