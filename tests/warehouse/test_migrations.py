"""Migrations run both ways on a real server, and the ORM and the migrated schema agree."""

from __future__ import annotations

import importlib
import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from tests.conftest import _libpq, create_database, drop_database
from warehouse import migrate
from warehouse.schema import Base, tenancy_of

security = importlib.import_module("warehouse.migrations.versions.002_0002_tenancy_security")
ingestion = importlib.import_module("warehouse.migrations.versions.003_0003_ingestion")
marts = importlib.import_module("warehouse.migrations.versions.004_0006_marts")
models = importlib.import_module("warehouse.migrations.versions.005_0007_models")
search = importlib.import_module("warehouse.migrations.versions.008_0402_search_terms")
implied_tenant = importlib.import_module("warehouse.migrations.versions.015_0305_implied_tenant_keys")
invoices = importlib.import_module("warehouse.migrations.versions.018_0310_invoices_complete")
mart_refresh = importlib.import_module("warehouse.migrations.versions.021_0340_mart_refresh_stamp")
LATER_PRACTICE_TABLES = (
    set(ingestion.PRACTICE_TABLES)
    | set(invoices.PRACTICE_TABLES)
    | set(mart_refresh.PRACTICE_TABLES)
    | set(marts.PRACTICE_TABLES)
    | set(models.PRACTICE_TABLES)
    | set(search.PRACTICE_TABLES)
)


def _tables(url: str) -> set[str]:
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
    return {r[0] for r in rows}


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


def test_migration_table_lists_cover_the_metadata():
    """A new tenant table must be added to the RLS/partition lists of a migration, or this fails."""
    practice = {t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "practice"}
    franchise = {t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "franchise"}
    assert practice == set(security.PRACTICE_TABLES) | LATER_PRACTICE_TABLES | {
        "audit_log",
        "audit_chain_head",
    }
    assert franchise == set(security.FRANCHISE_TABLES) | set(models.FRANCHISE_TABLES) | {
        "shared_resource_change"
    }


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
    for table, implied_by in implied_tenant.IMPLIED_BY.items():
        assert table not in direct
        assert (table, implied_by) in practice_led and implied_by in direct
    assert practice_tables <= reaches
