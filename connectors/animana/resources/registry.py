"""Every Animana resource's spec, and what is derived from them: the load order, the parents, the wire models.

The sync's order, the Dagster assets' deps, the simulator's resources and the CLI's progress bars all read these.
A new resource is one module with its ``SPEC``, listed in `SPECS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
from warehouse.integration.rules import RuleBook

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
# The conflict rules of each table written back, for the settlement of held Animana changes.
RULES_BY_TABLE: dict[str, RuleBook] = {s.table: s.conflict_rules for s in SPECS if s.table and s.write_back}


def resources_read_in(modes: Mapping[str, str]) -> tuple[str, ...]:
    """The resources the sync reads at a practice whose modules are in ``modes``: none of a native module's
    (Animana is frozen history for it there), and those no module owns (staff, rooms, products) unless every
    module is native: such a practice runs without Animana at all."""
    if modes and all(mode == "native" for mode in modes.values()):
        return ()
    return tuple(r for r in RESOURCE_ORDER if modes.get(SPEC_BY_NAME[r].module or "", "animana") != "native")
