"""Which warehouse tables are written back to Animana, in which module, as which Animana resource.

The same list is written into migration 0380's triggers (a migration never imports this module); the
``test_mirrored_tables_are_the_triggered_ones`` test keeps them equal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MirroredTable:
    table: str
    module: str  # practice_module_mode.module
    resource: str  # the Animana resource (its API name)
    label: str  # what a person calls one row, in Dutch


MIRRORED: dict[str, MirroredTable] = {
    t.table: t
    for t in (
        MirroredTable("client", "clients", "relations", "cliënt"),
        MirroredTable("patient", "clients", "animals", "dier"),
        MirroredTable("appointment", "agenda", "agenda", "afspraak"),
        MirroredTable("visit", "records", "consults", "consult"),
        MirroredTable("vaccination", "records", "vaccinations", "vaccinatie"),
        MirroredTable("prescription", "records", "prescriptions", "voorschrift"),
        MirroredTable("invoice", "invoices", "invoices", "factuur"),
        MirroredTable("payment", "invoices", "payments", "betaling"),
    )
}
MODULE_LABELS = {
    "clients": "Cliënten en dieren",
    "agenda": "Agenda",
    "records": "Medisch dossier",
    "invoices": "Facturatie",
}


def module_of(table: str) -> str:
    return MIRRORED[table].module
