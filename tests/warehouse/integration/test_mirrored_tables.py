"""The tables written back are the ones the migration put the capture triggers on, in the same modules."""

from __future__ import annotations

from warehouse.integration.tables import MIRRORED, MODULE_LABELS
from warehouse.migrations.database_code import WRITEBACK_TABLES
from warehouse.schema import Base
from warehouse.schema.tenancy import MODULES


def test_mirrored_tables_are_the_triggered_ones():
    assert {t.table: t.module for t in MIRRORED.values()} == WRITEBACK_TABLES
    assert set(MODULE_LABELS) == set(MODULES) >= {t.module for t in MIRRORED.values()}
    for table in MIRRORED:
        columns = Base.metadata.tables[table].columns
        assert {"animana_id", "animana_version", "writeback_pending"} <= set(columns.keys())
