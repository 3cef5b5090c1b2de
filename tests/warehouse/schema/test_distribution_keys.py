"""The scale-out path stays open: every key of a practice table includes practice_id (Citus co-location)."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, MetaData, Table, UniqueConstraint

from warehouse.schema import Base, tenancy_of

TABLES = {t.name: t for t in Base.metadata.sorted_tables}
PRACTICE = sorted(n for n, t in TABLES.items() if tenancy_of(t.info) == "practice")
FRANCHISE = sorted(n for n, t in TABLES.items() if tenancy_of(t.info) == "franchise")
# Tables that would be Citus reference tables (replicated to every node): FKs to them need no practice_id.
REFERENCE = {n for n, t in TABLES.items() if tenancy_of(t.info) in ("global", "franchise")}


def key_problems(table: Table, key: str = "practice_id") -> list[str]:
    problems = []
    if key not in table.primary_key.columns:
        problems.append(f"{table.name}: primary key lacks {key}")
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and key not in constraint.columns:
            problems.append(f"{table.name}: unique {constraint.name} lacks {key}")
        if (isinstance(constraint, ForeignKeyConstraint) and constraint.referred_table.name not in REFERENCE
                and key not in constraint.columns):  # fmt: skip
            problems.append(f"{table.name}: foreign key {constraint.name} lacks {key}")
    problems += [f"{table.name}: unique index {i.name} lacks {key}" for i in table.indexes
                 if i.unique and key not in i.columns]  # fmt: skip
    return problems


@pytest.mark.parametrize("name", PRACTICE)
def test_practice_table_keys_include_practice_id(name):
    assert key_problems(TABLES[name]) == []


@pytest.mark.parametrize("name", FRANCHISE)
def test_franchise_table_keys_include_franchise_id(name):
    assert "franchise_id" in TABLES[name].primary_key.columns


def test_a_table_keyed_on_id_alone_is_reported():
    meta = MetaData()
    parent = Table("parent_x", meta, Column("practice_id", BigInteger, primary_key=True),
                   Column("id", BigInteger, primary_key=True))  # fmt: skip
    bad = Table(
        "bad_x", meta, Column("id", BigInteger, primary_key=True), Column("practice_id", BigInteger),
        Column("parent_id", BigInteger), Column("code", BigInteger),
        ForeignKeyConstraint(["parent_id"], ["parent_x.id"]), UniqueConstraint("code", name="uq_code"),
    )  # fmt: skip
    assert parent is not None
    assert len(key_problems(bad)) == 3
