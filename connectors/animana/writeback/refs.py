"""`BatchRefs`: the `WriteRefs` of a batch of outbox entries — the rows their rows point at, read once per batch.

The parents of every entry's row (by the table's foreign keys) are read in one query per parent table before the
batch is sent; a reference outside them (a franchise's appointment type…) is read when asked and kept. A parent
sent earlier in the same batch is learnt from its answer, so its children in the batch need no second read.
The dispatcher's writer threads share one `BatchRefs`: a read on demand takes the session one thread at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from warehouse.integration.outbox import OutboxEntry, ParentNotInAnimana, parents_of, referenced_rows


class BatchRefs:
    def __init__(self, session: Session, practice_id: int) -> None:
        self._session = session
        self._practice_id = practice_id
        self._rows: dict[str, dict[int, dict[str, Any]]] = {}
        self._reading = threading.Lock()

    def prefetch(self, entries: Iterable[OutboxEntry]) -> None:
        wanted: dict[str, set[int]] = {}
        for entry in entries:
            for column, parent in parents_of(entry.table_name):
                if entry.row.get(column) is not None:
                    wanted.setdefault(parent, set()).add(entry.row[column])
        for table, ids in wanted.items():
            self._read(table, ids)

    def _read(self, table: str, ids: Iterable[int]) -> None:
        with self._reading:
            known = self._rows.setdefault(table, {})
            missing = [i for i in ids if i not in known]
            if missing:
                found = referenced_rows(self._session, self._practice_id, table, missing)
                known.update((i, dict(row)) for i, row in found.items())

    def _row(self, table: str, local_id: int) -> Mapping[str, Any]:
        self._read(table, [local_id])
        row = self._rows[table].get(local_id)
        if row is None:
            raise LookupError(f"{table} {local_id} does not exist")
        return row

    def animana_id(self, table: str, local_id: int | None) -> str | None:
        if local_id is None:
            return None
        animana_id = self._row(table, local_id).get("animana_id")
        if animana_id is None:
            raise ParentNotInAnimana(table, local_id)
        return animana_id

    def value(self, table: str, local_id: int | None, column: str) -> Any:
        return None if local_id is None else self._row(table, local_id)[column]

    def learn(self, table: str, local_id: int, animana_id: str) -> None:
        """A row of the batch reached Animana: its children in the batch point at this id."""
        row = self._rows.get(table, {}).get(local_id)
        if row is not None:
            row["animana_id"] = animana_id
