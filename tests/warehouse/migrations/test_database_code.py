"""``warehouse.migrations.database_code`` is the truth: after ``upgrade head`` the database holds exactly the
functions, policies and triggers written there, no more and no less."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.conftest import _libpq
from warehouse.migrations import database_code


def _spaced(sql: str | None) -> str | None:
    """Runs of whitespace as one space: the module spaces SQL for reading, PostgreSQL keeps it as it was sent."""
    return None if sql is None else " ".join(sql.split())


@pytest.fixture
def conn(fresh_db):
    with psycopg.connect(_libpq(fresh_db.admin_url)) as conn:
        yield conn


def test_every_function_is_written_as_the_database_has_it(conn):
    in_database = dict(
        conn.execute(
            """SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
               WHERE p.pronamespace = 'public'::regnamespace
                 AND NOT EXISTS (SELECT FROM pg_depend d
                                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')"""
        ).fetchall()
    )
    written = {re.search(r"FUNCTION public\.(\w+)\(", sql).group(1): sql for sql in database_code.FUNCTIONS}
    assert sorted(written) == sorted(in_database)
    for name, sql in written.items():
        assert _spaced(sql) == _spaced(in_database[name]), f"{name}() differs from database_code"


def test_every_policy_is_written_as_the_database_has_it(conn):
    in_database = {
        (table, name, permissive, tuple(roles), cmd, _spaced(using), _spaced(with_check))
        for table, name, permissive, roles, cmd, using, with_check in conn.execute(
            "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'public'"
        )
    }
    written = {
        (table, policy.name, "PERMISSIVE", ("public",), policy.command, policy.using, policy.with_check)
        for tables, policy in database_code.POLICIES
        for table in tables
    }
    assert written - in_database == set()
    assert in_database - written == set()


def test_every_trigger_is_written_as_the_database_has_it(conn):
    # Not the internal triggers of foreign keys, nor the clones PostgreSQL makes on partitions.
    in_database = {
        definition
        for (definition,) in conn.execute(
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal AND t.tgparentid = 0"
        )
    }
    written = set(database_code.TRIGGERS) | {
        trigger.format(table=table)
        for tables, triggers in database_code.TRIGGERS_ON_TABLES
        for table in tables
        for trigger in triggers
    }
    assert written - in_database == set()
    assert in_database - written == set()


def test_the_leakproof_extension_functions_are_the_ones_written(conn):
    leakproof = {
        signature
        for (signature,) in conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proleakproof"
        )
    }
    assert leakproof == set(database_code.LEAKPROOF_EXTENSION_FUNCTIONS)
