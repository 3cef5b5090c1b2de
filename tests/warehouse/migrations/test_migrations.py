"""Migrations run both ways on a real server, and the ORM and the migrated schema agree."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from tests.conftest import _libpq, create_database, drop_database
from warehouse.migrations import database_code
from warehouse.migrations import runner as migrate
from warehouse.schema import Base, tenancy_of

VERSIONS = migrate.MIGRATIONS_DIR / "versions"
# What a migration may import: the libraries it runs on, nothing of ours (README.md).
MIGRATION_IMPORTS = {"__future__", "collections.abc", "alembic", "sqlalchemy", "sqlalchemy.dialects"}
# table -> the table whose NOT NULL (practice_id, …) key implies the table's practice is a tenant (0305 dropped
# the table's own key to tenant).
IMPLIED_TENANT = {"appointment": "resource", "visit": "patient", "invoice": "client"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migration_files_sort_in_the_order_alembic_runs_them():
    """``<position in the chain>_<revision>_<slug>.py``: the directory listing is the history (README.md)."""
    chain = list(reversed(list(ScriptDirectory(str(migrate.MIGRATIONS_DIR)).walk_revisions())))
    files = sorted(p.name for p in VERSIONS.glob("*.py"))
    assert files == [Path(script.path).name for script in chain]
    for position, script in enumerate(chain, start=1):
        assert Path(script.path).name.startswith(f"{position:03d}_{script.revision}_")


def test_no_migration_imports_code_that_can_change():
    """A migration keeps the SQL it ran: it imports only the libraries, never another migration or our code."""
    for path in VERSIONS.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert modules <= MIGRATION_IMPORTS, path.name


def test_upgrade_from_empty_downgrade_to_base_and_upgrade_again(server_url):
    name = f"vc_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    try:
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        assert {t.name for t in Base.metadata.sorted_tables} <= _tables(url)
        migrate.downgrade(url, "base")
        assert migrate.current_revision(url) is None
        assert _tables(url) == set()
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        migrate.require_current(url)
    finally:
        drop_database(server_url, name)


def test_orm_models_match_the_migrated_schema(fresh_db):
    engine = create_engine(fresh_db.admin_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    # Partitions created by onboarding are tables the ORM does not declare; none exist in a fresh database.
    assert diff == []


def test_require_current_names_the_fix_when_the_schema_is_behind(server_url):
    name = f"vc_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    try:
        migrate.upgrade(url, "0001")
        with pytest.raises(migrate.MigrationsBehind, match=r"at 0001 .* run `vetconnect db migrate`"):
            migrate.require_current(url)
    finally:
        drop_database(server_url, name)


def test_policy_table_lists_cover_the_metadata():
    """A new tenant table must get its tenancy policy (and be listed in ``database_code``), or this fails."""
    practice = {t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "practice"}
    franchise = {t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "franchise"}
    assert practice == set(database_code.PRACTICE_TABLES)
    assert franchise == set(database_code.FRANCHISE_TABLES)


def test_onboarding_partitions_exactly_the_tables_the_models_declare_partitioned(fresh_db):
    declared = {t.name for t in Base.metadata.sorted_tables if t.info.get("partitioned")}
    with psycopg.connect(_libpq(fresh_db.admin_url)) as conn:
        found = {r[0] for r in conn.execute("SELECT practice_partitioned_tables()").fetchall()}
    assert found == declared


def test_every_practice_row_reaches_a_tenant_through_its_foreign_keys(fresh_db):
    """Each practice-owned table references ``tenant`` itself or, through NOT NULL composite keys led by
    ``practice_id``, a table that does (0305 dropped the direct keys that such a key implies); otherwise a row
    could name a practice that does not exist."""
    practice_tables = {t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "practice"}
    with psycopg.connect(_libpq(fresh_db.admin_url)) as conn:
        keys = conn.execute(
            """SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
                      bool_and(a.attnotnull), (array_agg(a.attname ORDER BY k.n))[1]
               FROM pg_constraint c
               CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
               WHERE c.contype = 'f' AND c.conparentid = 0
               GROUP BY c.oid, c.conrelid, c.confrelid"""
        ).fetchall()
    direct = {table for table, parent, _, _ in keys if parent == "tenant"}
    practice_led = {
        (table, parent) for table, parent, not_null, first in keys if not_null and first == "practice_id"
    }
    reaches = set(direct)
    while grown := {table for table, parent in practice_led if parent in reaches} - reaches:
        reaches |= grown
    for table, implied_by in IMPLIED_TENANT.items():
        assert table not in direct
        assert (table, implied_by) in practice_led and implied_by in direct
    assert practice_tables <= reaches
