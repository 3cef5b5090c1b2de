"""`ResourceSpec`: everything VetConnect knows about one Animana resource, declared in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.animana.models import AnimanaRecord, WireRecord, WritePayload
from warehouse.ingest.animana.load import ResourceLoad
from warehouse.ingest.animana.rows import Batch

RowMapping = Callable[[WireRecord], tuple]
"""A record → its one warehouse row (most resources; the mapping's fast path)."""
RecordMapping = Callable[[WireRecord, Batch], None]
"""A record → its row, child rows (``batch.children``) and notes (``batch.rejected``), added to the page's batch."""
WriteBack = Callable[[Mapping[str, Any]], WritePayload]
"""A warehouse row (its columns by name) → the Animana write payload that makes the same change upstream."""


@dataclass(frozen=True)
class ResourceSpec:
    """One Animana resource: its wire model, how a record maps to warehouse rows (and, later, back), how those
    rows load, and which resources it depends on. Declared as ``SPEC`` in the resource's module and collected by
    `registry`, from which the sync's order, the Dagster asset deps, the simulator's resources and the CLI's
    list are all derived.

    - ``name``: the API's resource name (URL segment, cursor key, quarantine resource, Dagster asset name).
    - ``model``: the model a live record validates against (`parsing`).
    - ``parents``: resources whose rows this one's rows point at: loaded first (`registry.RESOURCE_ORDER`), and
      the upstream deps of its Dagster asset.
    - the read mapping, exactly one of ``read_row`` (`RowMapping`) and ``read_record`` (`RecordMapping`).
    - ``write_back``: reserved for the write side (a warehouse row → the Animana write that mirrors it,
      `WriteBack`), declared beside the read mapping it inverts; no resource sets it yet.
    - ``load``: how the rows land (a `warehouse.ingest.animana.load.ResourceLoad`) — a `plan.TableLoad` declared
      as data (table, staging columns, columns, parents to resolve with the quarantine rule for unknown ones,
      tombstone rule; the mirror count follows from them), or a `load.HandlerLoad` naming a bespoke warehouse
      handler with its tombstone rule and mirror count (how the mirror's rows are counted for drift).
    """

    name: str
    model: type[AnimanaRecord]
    load: ResourceLoad
    parents: tuple[str, ...] = ()
    read_row: RowMapping | None = None
    read_record: RecordMapping | None = None
    write_back: WriteBack | None = None

    def __post_init__(self) -> None:
        if (self.read_row is None) == (self.read_record is None):
            raise ValueError(f"{self.name}: give exactly one of read_row and read_record")
