"""Row-level security, generated over every tenant table: the database, not the code, keeps practices apart."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests.conftest import as_role
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema import Base, tenancy_of

PRACTICE_TABLES = sorted(t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "practice")
FRANCHISE_TABLES = sorted(t.name for t in Base.metadata.sorted_tables if tenancy_of(t.info) == "franchise")
DENIED = ("row-level security", "permission denied")


def _count(conn: psycopg.Connection, table: str, column: str, value: int) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    return conn.execute(query, (value,)).fetchone()[0]


def _expect_denied(conn: psycopg.Connection, statement: sql.Composable, params: tuple) -> None:
    # The savepoint (conn.transaction) rolls back on the error, so the outer test transaction stays usable.
    with pytest.raises(psycopg.Error) as caught, conn.transaction():
        conn.execute(statement, params)
    assert any(word in str(caught.value) for word in DENIED), str(caught.value)


@pytest.mark.parametrize("table", PRACTICE_TABLES)
def test_practice_a_cannot_read_insert_update_or_delete_practice_b_rows(world_db, admin_conn, table):
    a, b = world_db.world.practices["a1"], world_db.world.practices["b1"]
    b_rows_before = _count(admin_conn, table, "practice_id", b.practice_id)
    assert b_rows_before > 0, f"the world has no {table} row for practice b1: the test would prove nothing"
    assert _count(admin_conn, table, "practice_id", a.practice_id) > 0

    as_role(admin_conn, AccessContext.for_practices([a.practice_id], user_id=a.user_id))
    t = sql.Identifier(table)
    visible = admin_conn.execute(sql.SQL("SELECT DISTINCT practice_id FROM {}").format(t)).fetchall()
    assert visible == [(a.practice_id,)]

    # Every column but the generated ones (PostgreSQL computes those and refuses a value for them).
    columns = [
        sql.Identifier(name)
        for (name,) in admin_conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (table,),
        )
    ]
    copy_into_b = sql.SQL(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::{t}, "
        "(SELECT to_jsonb(r) FROM {t} r LIMIT 1) || jsonb_build_object('practice_id', %s::bigint))"
    ).format(t=t, cols=sql.SQL(", ").join(columns))
    _expect_denied(admin_conn, copy_into_b, (b.practice_id,))

    # No UPDATE/DELETE grant (client_consent: an UPDATE of client_id only, for a merge).
    append_only = table in (
        "audit_log",
        "audit_chain_head",
        "client_consent",
        "client_erasure",
        "audit_redaction",
    )
    for statement in (
        sql.SQL("UPDATE {} SET practice_id = practice_id WHERE practice_id = %s").format(t),
        sql.SQL("DELETE FROM {} WHERE practice_id = %s").format(t),
    ):
        if append_only:
            _expect_denied(admin_conn, statement, (b.practice_id,))
        else:
            assert admin_conn.execute(statement, (b.practice_id,)).rowcount == 0
    if not append_only:  # moving one of A's own rows into B is a write into B as well
        _expect_denied(
            admin_conn, sql.SQL("UPDATE {} SET practice_id = %s WHERE practice_id = %s").format(t),
            (b.practice_id, a.practice_id),
        )  # fmt: skip

    admin_conn.execute("RESET ROLE")
    assert _count(admin_conn, table, "practice_id", b.practice_id) == b_rows_before


@pytest.mark.parametrize("table", PRACTICE_TABLES + FRANCHISE_TABLES + ["tenant", "app_user", "membership"])
def test_nothing_is_visible_without_a_context(world_db, admin_conn, table):
    assert (
        admin_conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0] > 0
    )
    as_role(admin_conn, None)
    count = admin_conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
    assert count == 0


@pytest.mark.parametrize("table", FRANCHISE_TABLES)
def test_franchise_resources_are_shared_within_a_franchise_only(world_db, admin_conn, table):
    world = world_db.world
    a2 = world.practices["a2"]
    as_role(admin_conn, AccessContext.for_practices([a2.practice_id]))
    franchises = admin_conn.execute(
        sql.SQL("SELECT DISTINCT franchise_id FROM {}").format(sql.Identifier(table))
    ).fetchall()
    assert franchises == [(world.franchises["fa"],)]
    copy_into_b = sql.SQL(
        "INSERT INTO {t} SELECT (jsonb_populate_record(NULL::{t}, to_jsonb(r) || jsonb_build_object("
        "'franchise_id', %s::bigint, 'id', r.id + 100000))).* FROM {t} r LIMIT 1"
    ).format(t=sql.Identifier(table))
    _expect_denied(admin_conn, copy_into_b, (world.franchises["fb"],))


def test_a_franchise_manager_sees_every_practice_of_the_franchise_and_no_other(world_db):
    from warehouse.security.accounts import access_context_for_user

    world = world_db.world
    with world_db.system() as session:
        context = access_context_for_user(session, world.franchise_manager_id)
    assert set(context.practice_ids) == {world.practices["a1"].practice_id, world.practices["a2"].practice_id}
    with world_db.as_app(context) as session:
        from sqlalchemy import text

        seen = set(session.scalars(text("SELECT DISTINCT practice_id FROM patient")))
        tenants = set(session.scalars(text("SELECT code FROM tenant")))
    assert seen == set(context.practice_ids)
    assert tenants == {"fa", "a1", "a2"}


def test_partitions_are_not_reachable_directly(world_db, admin_conn):
    a = world_db.world.practices["a1"]
    as_role(admin_conn, AccessContext.for_practices([a.practice_id]))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), admin_conn.transaction():
        admin_conn.execute(
            sql.SQL("SELECT * FROM {}").format(sql.Identifier(f"appointment_p{a.practice_id}"))
        )


def test_every_tenant_table_in_the_database_has_forced_rls_and_a_policy(world_db, admin_conn):
    rows = admin_conn.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname <> 'alembic_version'
        """
    ).fetchall()
    unprotected = [name for name, enabled, forced, _ in rows if not (enabled and forced)]
    assert unprotected == []
    # No policy means no row for the application role at all: the bypass log, and the warehouse-wide search
    # vocabulary (read only through search_similar_words(), which filters by the caller's practices), the
    # invitations (issued and accepted in the system session only, like sign-in).
    readable_by_nobody = {"system_access", "search_vocabulary", "user_invitation"}
    without_policy = [
        name for name, _, _, policies in rows if policies == 0 and name not in readable_by_nobody
    ]
    assert without_policy == []


def test_the_application_role_cannot_bypass_rls(world_db, admin_conn):
    super_, bypass = admin_conn.execute(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'vetconnect_app'"
    ).fetchone()
    assert (super_, bypass) == (False, False)
