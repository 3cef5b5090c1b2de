"""One page of Animana records → a loader `Batch` (`warehouse.ingest.animana.rows`), by the resource's spec. No SQL
here: the loader resolves Animana ids to warehouse ids by joins.

Each resource's own mapping is its spec's read mapping (`resources.<resource>`); the rules they share are in
`resources.values`. A record that cannot become a valid row is rejected with a reason; mapping never raises.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from warehouse.ingest.animana.rows import Batch, Rejection

from .models import RejectedRecord, Tombstone, WireItem
from .resources.registry import SPEC_BY_NAME
from .resources.values import MappingError, id_text, raw_json


def map_items(resource: str, items: Iterable[WireItem]) -> Batch:
    """Map one page's items (wire records, tombstones, rejected records: ``iter_pages(..., wire=True)``) to a
    loader `Batch`."""
    # The mapping is looked up once per page, not per record: most resources map one record to one row.
    spec = SPEC_BY_NAME.get(resource)
    if spec is None:
        raise KeyError(f"no mapping for Animana resource {resource!r}")
    row_of, into_batch = spec.read_row, spec.read_record
    batch = Batch(resource)
    rows = batch.rows
    stamps: list[dt.datetime] = []
    for item in items:
        if isinstance(item, RejectedRecord):
            raw = item.raw if isinstance(item.raw, str) else json.dumps(item.raw, ensure_ascii=False)
            batch.rejected.append(Rejection(id_text(item.record_id), raw, item.reason))
            continue
        if isinstance(item, Tombstone):
            stamps.append(item.updated_at)
            batch.deleted.append(str(item.id))
            continue
        stamps.append(item["updated_at"])
        try:
            if row_of is not None:
                rows.append(row_of(item))
            else:
                into_batch(item, batch)  # type: ignore[misc]
        except (MappingError, ValueError, ArithmeticError) as exc:
            batch.rejected.append(Rejection(str(item["id"]), raw_json(item), str(exc)))
    batch.high_water = max(stamps, default=None)
    return batch
