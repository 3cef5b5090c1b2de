"""Reconciliation of one Animana resource before a module is cut over: the API's records against the rows that
mirror them, by count and by a checksum per record computed the same way on both sides.

The API side is what the resource's read mapping makes of each record (its spec's row: a NamedTuple whose fields
are named as the loader stages them, e.g. ``patient_animana_id``, ``updated_at``); the connector hands those rows
over, so the field list is the mapping's own and is never repeated here. The stored side reads each mirrored row
back into the same fields (`read_back`): a column of the same name, an ``<x>_animana_id`` through the row's foreign
key ``<x>_id``, ``updated_at`` as the Animana version the row agreed with, a client's PII decrypted, and the codes
the loader resolves by the franchise's lists (`CODE_REFERENCES`). Both sides are then reduced to canonical JSON
(UTC instants, normalised decimals) and hashed.

Only the mirrored rows are compared (the resource's `MirrorCount`: from Animana, not deleted). A record the API
lists that has no row is *missing* (a rejected or quarantined record among them), a row the API no longer lists is
*extra*, and a row whose checksum differs is *different*, with the names of the fields that differ.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from psycopg import sql
from sqlalchemy.orm import Session

from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.statements import driver_connection
from warehouse.integration.outbox import ENCRYPTED_PII, parents_of
from warehouse.kernel.ciphers import every_practice_cipher
from warehouse.kernel.crypto import FieldCipher
from warehouse.schema import Base

# Fields the loader resolves by code in a franchise list (not by a practice foreign key): the column holding the
# resolved id and the list. A code the franchise's list lacks loads as no reference, so the API's value is read
# the same way before it is compared (`ResourceCheck.api_values`).
CODE_REFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("appointment", "type_code"): ("appointment_type_id", "appointment_type"),
    ("prescription", "product_code"): ("product_id", "product"),
}
VERSION_FIELD = "updated_at"  # a mirrored row's Animana version (stored as animana_version)
PII_COLUMNS = {name: column for column, name in ENCRYPTED_PII.items()}
LISTED_PER_RESOURCE = 1000  # differences listed per resource (all are counted)
PROGRESS_EVERY = 1000  # records between two progress reports


@dataclass(frozen=True)
class MirroredResource:
    """One Animana resource of a module as the reconciliation sees it: its name, and which rows mirror it."""

    name: str
    mirror: MirrorCount

    @property
    def table(self) -> str:
        return self.mirror.table


@dataclass(frozen=True)
class Unmapped:
    """A live record the API lists that its read mapping refused (it never became a row)."""

    animana_id: str | None
    reason: str


ApiItem = (
    tuple | Unmapped
)  # a row as the resource's read mapping makes it (a NamedTuple), or a refused record


@dataclass(frozen=True)
class Difference:
    resource: str
    animana_id: str
    kind: str  # missing (in Animana, not here) | extra (here, not in Animana) | different
    fields: tuple[str, ...] = ()  # of a different record: the fields whose values differ
    note: str = ""


@dataclass
class ResourceReconciliation:
    resource: str
    table: str
    api: int = 0  # live records the API listed
    mirrored: int = 0  # rows mirroring the resource here
    equal: int = 0  # records whose checksums match
    missing: int = 0
    extra: int = 0
    different: int = 0
    listed: list[Difference] = field(default_factory=list)  # up to `LISTED_PER_RESOURCE`

    @property
    def differences(self) -> int:
        return self.missing + self.extra + self.different

    def note(self, difference: Difference) -> None:
        kind = difference.kind
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.listed) < LISTED_PER_RESOURCE:
            self.listed.append(difference)

    def summary(self) -> dict[str, int]:
        keys = ("api", "mirrored", "equal", "missing", "extra", "different")
        return {k: getattr(self, k) for k in keys}


def canonical(value: Any) -> Any:
    """A value as both sides agree to write it: instants in UTC, decimals normalised, dates as ISO text."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, float):
        return canonical(decimal.Decimal(repr(value)))
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def checksum(values: Sequence[Any]) -> bytes:
    text = json.dumps([canonical(v) for v in values], separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class _ReadBack(NamedTuple):
    select: sql.Composed  # animana_id, then one column per field (PII as ciphertext, then the key version)
    decrypt: tuple[int, ...]  # positions (in the fields) of ciphertexts
    version: int | None  # position of the Animana version (stored as text)
    # position → (table, key): the field holds a local id of ``table``, read back as that row's ``key``
    # (``animana_id`` of a practice's row, ``code`` of a franchise list's).
    lookups: dict[int, tuple[str, str]]


def read_back(table: str, fields: Sequence[str], mirror: MirrorCount, *, only: bool = False) -> _ReadBack:
    """The SELECT reading the practice's mirrored rows of ``table`` back into the mapping's ``fields`` (``only``:
    those whose animana_id is in ``%(only)s``). References are read as local ids and looked up afterwards, not
    joined: a join's plan depends on statistics a freshly loaded table may not have yet (a nested loop over
    100,000 rows), a look-up does not."""
    columns = Base.metadata.tables[table].c
    parents = dict(parents_of(table))
    exprs: list[sql.Composable] = []
    decrypt = []
    version = None
    lookups: dict[int, tuple[str, str]] = {}
    for position, name in enumerate(fields):
        if name == "animana_id":
            exprs.append(sql.Identifier("animana_id"))
        elif name == VERSION_FIELD and "animana_version" in columns:
            exprs.append(sql.Identifier("animana_version"))
            version = position
        elif name in PII_COLUMNS and PII_COLUMNS[name] in columns:
            exprs.append(sql.Identifier(PII_COLUMNS[name]))
            decrypt.append(position)
        elif (table, name) in CODE_REFERENCES:
            column, listed = CODE_REFERENCES[(table, name)]
            exprs.append(sql.Identifier(column))
            lookups[position] = (listed, "code")
        elif (parent := _parent(table, name, parents)) is not None:
            column, parent_table = parent
            exprs.append(sql.Identifier(column))
            lookups[position] = (parent_table, "animana_id")
        elif name in columns:
            exprs.append(sql.Identifier(name))
        else:
            raise KeyError(f"{table}: no column to read the mapped field {name!r} back from")
    where = [sql.SQL("practice_id = %(pid)s"), *mirror.conditions]
    if only:
        where.append(sql.SQL("animana_id = ANY(%(only)s)"))
    if decrypt:
        exprs.append(sql.Identifier("key_version"))
    select = sql.SQL("SELECT animana_id, {exprs} FROM {table} WHERE {where}").format(
        exprs=sql.SQL(", ").join(exprs) if exprs else sql.SQL("NULL"),
        table=sql.Identifier(table),
        where=sql.SQL(" AND ").join(where),
    )
    return _ReadBack(select, tuple(decrypt), version, lookups)


def _parent(table: str, name: str, parents: dict[str, str]) -> tuple[str, str] | None:
    """``<x>_animana_id`` → (``<x>_id``, the table it points at): by its foreign key, else the table named ``<x>``
    (a few references, such as a reminder's client, have no foreign key)."""
    if not name.endswith("_animana_id"):
        return None
    column = name.removesuffix("_animana_id") + "_id"
    if column not in Base.metadata.tables[table].c:
        return None
    target = parents.get(column, name.removesuffix("_animana_id"))
    return (column, target) if target in Base.metadata.tables else None


class ResourceCheck:
    """Reconciles one resource: `run` takes the API's items (in any order; a record listed twice counts once,
    as its last version) and compares them with the practice's mirrored rows."""

    def __init__(self, session: Session, practice_id: int, franchise_id: int, master_key: bytes) -> None:
        self._session = session
        self._practice_id = practice_id
        self._franchise_id = franchise_id
        self._ciphers: dict[int, FieldCipher] | None = None
        self._lookups: dict[tuple[str, str], dict[int, str]] = {}
        self._master_key = master_key

    def run(
        self,
        resource: MirroredResource,
        items: Iterable[ApiItem],
        advance: Callable[[int], None] | None = None,
    ) -> ResourceReconciliation:
        result = ResourceReconciliation(resource.name, resource.table)
        stream = iter(items)
        head: list[ApiItem] = []
        fields: tuple[str, ...] = ()
        for item in stream:  # the first mapped row names the fields
            head.append(item)
            if not isinstance(item, Unmapped):
                fields = tuple(item._fields)
                break
        stored = dict(self._stored(resource, fields))
        result.mirrored = len(stored)
        codes = self._codes(resource.table, fields)
        seen: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        differing: dict[str, tuple] = {}
        for n, item in enumerate(_chain(head, stream), 1):
            if isinstance(item, Unmapped):
                refused[item.animana_id or f"#{n}"] = item.reason
            else:
                values = self.api_values(item, fields, codes)
                digest = checksum(values)
                seen[values[0]] = digest
                if stored.get(values[0], digest) != digest:
                    differing[values[0]] = values
                else:
                    differing.pop(values[0], None)
            if advance is not None and n % PROGRESS_EVERY == 0:
                advance(PROGRESS_EVERY)
        result.api = len(seen) + len(set(refused) - set(seen))
        for animana_id, reason in refused.items():
            if animana_id not in seen:
                result.note(Difference(resource.name, animana_id, "missing", note=f"not loadable: {reason}"))
        for animana_id in seen.keys() - stored.keys():
            result.note(Difference(resource.name, animana_id, "missing"))
        for animana_id in stored.keys() - seen.keys() - refused.keys():
            result.note(Difference(resource.name, animana_id, "extra", note="no longer listed by Animana"))
        rows = self._stored_values(resource, fields, list(differing))
        for animana_id, api_values in differing.items():
            mine = rows[animana_id]
            names = tuple(
                f for f, a, b in zip(fields, api_values, mine, strict=True) if canonical(a) != canonical(b)
            )
            result.note(Difference(resource.name, animana_id, "different", names))
        result.equal = sum(1 for i, digest in seen.items() if stored.get(i) == digest)
        return result

    def api_values(self, row: tuple, fields: Sequence[str], codes: dict[str, set[str]]) -> tuple:
        """The API's row with the codes resolved as the loader resolves them (unknown to the franchise: none)."""
        if not codes:
            return tuple(row)
        values = list(row)
        for position, name in enumerate(fields):
            if name in codes and values[position] not in codes[name]:
                values[position] = None
        return tuple(values)

    def _codes(self, table: str, fields: Sequence[str]) -> dict[str, set[str]]:
        return {
            name: set(self._lookup(CODE_REFERENCES[(table, name)][1], "code").values())
            for name in fields
            if (table, name) in CODE_REFERENCES
        }

    def _lookup(self, table: str, key: str) -> dict[int, str]:
        """Local id → ``key`` of every row of ``table`` (the practice's, or its franchise's list's)."""
        if (table, key) not in self._lookups:
            owner = "franchise_id" if key == "code" else "practice_id"
            cur = driver_connection(self._session).cursor()
            cur.execute(
                sql.SQL("SELECT id, {} FROM {} WHERE {} = %s").format(
                    sql.Identifier(key), sql.Identifier(table), sql.Identifier(owner)
                ),
                (self._franchise_id if key == "code" else self._practice_id,),
            )
            self._lookups[(table, key)] = dict(cur.fetchall())
        return self._lookups[(table, key)]

    def _rows(
        self, resource: MirroredResource, fields: Sequence[str], only: list[str] | None = None
    ) -> Iterator[tuple]:
        back = read_back(resource.table, fields, resource.mirror, only=only is not None)
        params: dict[str, Any] = {"pid": self._practice_id, "only": only}
        lookups = {position: self._lookup(*wanted) for position, wanted in back.lookups.items()}
        connection = driver_connection(self._session)
        # All rows of a resource stream through a server-side cursor; the few differing ones come at once.
        cur = connection.cursor(name="reconcile") if only is None else connection.cursor()
        cur.execute(back.select, params)
        for row in cur:
            values = list(row[1 : 1 + len(fields)])
            for position, found in lookups.items():
                local = values[position]
                values[position] = None if local is None else found.get(local)
            if back.decrypt:
                cipher = self._cipher(row[-1])
                for position in back.decrypt:
                    values[position] = cipher.decrypt(fields[position], values[position])
            if back.version is not None and values[back.version] is not None:
                values[back.version] = dt.datetime.fromisoformat(values[back.version])
            yield row[0], tuple(values)
        cur.close()

    def _stored(self, resource: MirroredResource, fields: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        for animana_id, values in self._rows(resource, fields):
            yield animana_id, checksum(values)

    def _stored_values(
        self, resource: MirroredResource, fields: Sequence[str], ids: list[str]
    ) -> dict[str, tuple]:
        return dict(self._rows(resource, fields, ids)) if ids else {}

    def _cipher(self, key_version: int) -> FieldCipher:
        if self._ciphers is None:
            ciphers = every_practice_cipher(self._session, [self._practice_id], self._master_key)
            self._ciphers = {c.key_version: c for c in ciphers}
        return self._ciphers[key_version]


def _chain(head: list[ApiItem], rest: Iterator[ApiItem]) -> Iterator[ApiItem]:
    yield from head
    yield from rest
