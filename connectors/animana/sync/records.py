"""Loading records Animana handed us outside a sync's stream — the current record a refused conditional write
(412) answers with — exactly as the sync loads them.

Why not wait for the stream: the stream brings a record when it changes after the practice's cursor, and a row
can be behind a version the cursor has already passed. An answer replayed for an idempotency key is the record
as it was when first written; a row stamped with it is older than Animana, every conditional write of it is
refused, and no sync would ever bring the newer version again. Loading the record the refusal carries puts the
row back on Animana's version: a row with a change Animana has not acknowledged holds it (``writeback_hold``) for
the settlement to decide per field; any other row takes it. The cursor does not move: when the stream brings the
record again it is unchanged and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from connectors.animana.mapping import map_items
from connectors.animana.parsing import as_wire, parse_record
from connectors.animana.resources.registry import RESOURCE_ORDER, SPEC_BY_NAME
from connectors.animana.sync.links import LinkedPractice
from warehouse.ingest.animana.load import load_batch
from warehouse.ingest.animana.rows import LoadTarget
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.tenancy import AccessContext, tenant_session


def load_records(
    app_engine: Engine,
    practice: LinkedPractice,
    records: Mapping[str, list[dict[str, Any]]],
    *,
    master_key: bytes,
) -> None:
    """Load ``records`` (resource → Animana's records as it sent them) in one transaction, parents first; a bad
    record is quarantined as in a sync."""
    target = LoadTarget(practice.practice_id, practice.franchise_id)
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        cipher = practice_cipher(session, practice.practice_id, master_key)
        for resource in (r for r in RESOURCE_ORDER if records.get(r)):
            items = [as_wire(parse_record(practice.animana_id, resource, raw)) for raw in records[resource]]
            load_batch(
                session, target, map_items(resource, items), SPEC_BY_NAME[resource].load, cipher=cipher
            )
