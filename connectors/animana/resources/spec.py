"""`ResourceSpec`: everything VetConnect knows about one Animana resource, declared in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.animana.models import AnimanaRecord, WireRecord
from warehouse.ingest.animana.load import ResourceLoad
from warehouse.ingest.animana.rows import Batch
from warehouse.integration.rules import RuleBook

RowMapping = Callable[[WireRecord], tuple]
"""A record → its one warehouse row (most resources; the mapping's fast path)."""
RecordMapping = Callable[[WireRecord, Batch], None]
"""A record → its row, child rows (``batch.children``) and notes (``batch.rejected``), added to the page's batch."""


class WriteRefs(Protocol):
    """What a write-back mapping needs beyond its row: the Animana ids of the rows it points at."""

    def animana_id(self, table: str, local_id: int | None) -> str | None:
        """The Animana id of ``table``'s row ``local_id`` (None for None); raises
        `warehouse.integration.outbox.ParentNotInAnimana` while that row has not reached Animana yet."""
        ...

    def value(self, table: str, local_id: int | None, column: str) -> Any:
        """One column of a referenced row (e.g. an appointment type's code)."""
        ...


WriteBack = Callable[[Mapping[str, Any], WriteRefs], dict[str, Any]]
"""A warehouse row (its columns by name; a client's PII decrypted under its field names, ``email`` not
``email_enc``) → the JSON body of the Animana write (POST to create, PATCH with If-Match to update) that makes
the record upstream what the row is here."""


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
    - ``module``: the VetConnect module the resource belongs to (`warehouse.schema.tenancy.MODULES`); its mode
      at a practice decides whether the sync reads the resource there (never in ``native``). None: read always
      (reference data every module uses, such as staff and rooms).
    - ``table``: the warehouse table a record's row lands in (the one written back, `warehouse.integration.tables`).
    - ``write_back``: the write side (a warehouse row → the Animana write that mirrors it, `WriteBack`), declared
      beside the read mapping it inverts; None for a resource VetConnect never writes.
    - ``conflict_rules``: per column of ``table``, the `warehouse.integration.rules.FieldRule` that decides a
      field both sides changed; a column without one goes to a person (the conflict queue).
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
    module: str | None = None
    table: str | None = None
    write_back: WriteBack | None = None
    conflict_rules: RuleBook = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.read_row is None) == (self.read_record is None):
            raise ValueError(f"{self.name}: give exactly one of read_row and read_record")
