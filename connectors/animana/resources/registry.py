"""Every Animana resource's spec, and what is derived from them: the load order, the parents, the wire models.

The sync's order, the Dagster assets' deps, the simulator's resources and the CLI's progress bars all read these.
A new resource is one module with its ``SPEC``, listed in `SPECS`.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.animana.models import AnimanaRecord
from connectors.animana.resources import (
    agenda,
    animals,
    consults,
    invoices,
    labresults,
    payments,
    prescriptions,
    products,
    relations,
    reminders,
    rooms,
    shifts,
    staff,
    vaccinations,
)
from connectors.animana.resources.spec import ResourceSpec

# Listed in the order they are loaded when the parents leave the choice (see `load_order`).
SPECS: tuple[ResourceSpec, ...] = (
    staff.SPEC,
    rooms.SPEC,
    products.SPEC,
    relations.SPEC,
    animals.SPEC,
    agenda.SPEC,
    consults.SPEC,
    vaccinations.SPEC,
    prescriptions.SPEC,
    labresults.SPEC,
    invoices.SPEC,
    payments.SPEC,
    shifts.SPEC,
    reminders.SPEC,
)


def load_order(specs: Iterable[ResourceSpec]) -> tuple[str, ...]:
    """The resources' names with every parent before its children. Stable: of the resources whose parents are
    all placed, the one listed first goes next, so a list already in a valid order stays as it is."""
    pending = list(specs)
    names = [s.name for s in pending]
    if len(set(names)) != len(names):
        raise ValueError(f"a resource is declared twice: {names}")
    unknown = {p for s in pending for p in s.parents} - set(names)
    if unknown:
        raise ValueError(f"parents that are not resources: {sorted(unknown)}")
    placed: list[str] = []
    while pending:
        ready = next((s for s in pending if set(s.parents) <= set(placed)), None)
        if ready is None:
            raise ValueError(f"the parents of {[s.name for s in pending]} form a cycle")
        placed.append(ready.name)
        pending.remove(ready)
    return tuple(placed)


RESOURCE_ORDER: tuple[str, ...] = load_order(SPECS)
SPEC_BY_NAME: dict[str, ResourceSpec] = {s.name: s for s in SPECS}
PARENTS: dict[str, tuple[str, ...]] = {s.name: s.parents for s in SPECS}
RESOURCE_MODELS: dict[str, type[AnimanaRecord]] = {name: SPEC_BY_NAME[name].model for name in RESOURCE_ORDER}
