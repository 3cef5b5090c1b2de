"""tenant_session: the context is transaction-local, and ORM statements on partitioned tables carry a literal practice
filter."""

from __future__ import annotations

from sqlalchemy import event, func, select, text

from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.schema.clients import Patient
from warehouse.schema.scheduling import Appointment


def test_orm_statements_on_partitioned_tables_get_a_literal_practice_filter_so_partitions_prune_at_plan_time(
    world_db,
):
    a1 = world_db.world.practices["a1"]
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    event.listen(world_db.app_engine, "before_cursor_execute", capture)
    try:
        with tenant_session(world_db.app_engine, AccessContext.for_practices([a1.practice_id])) as session:
            count = session.scalar(select(func.count()).select_from(Appointment))
            session.scalars(select(Patient).where(Patient.name.like("B%"))).all()
            plan = (
                session.execute(
                    text("EXPLAIN SELECT * FROM appointment WHERE practice_id IN (:p)"), {"p": a1.practice_id}
                )
                .scalars()
                .all()
            )
    finally:
        event.remove(world_db.app_engine, "before_cursor_execute", capture)
    assert count == 1
    orm_selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "set_config" not in s]
    assert len(orm_selects) == 2
    # The partitioned table gets the literal filter; a table that is not partitioned has nothing to prune.
    assert "practice_id IN" in orm_selects[0]
    assert "practice_id IN" not in orm_selects[1]
    scanned = [line for line in plan if "appointment_p" in line]
    assert scanned, plan
    assert all(f"appointment_p{a1.practice_id} " in line for line in scanned)


def test_context_does_not_leak_to_the_next_transaction_on_a_pooled_connection(world_db):
    a1 = world_db.world.practices["a1"]
    with tenant_session(world_db.app_engine, AccessContext.for_practices([a1.practice_id])) as session:
        assert session.scalar(text("SELECT current_setting('app.practice_ids')")) == str(a1.practice_id)
    with world_db.app_engine.connect() as conn:
        leftover = conn.execute(text("SELECT current_setting('app.practice_ids', true)")).scalar()
        visible = conn.execute(text("SELECT count(*) FROM patient")).scalar()
    assert leftover in (None, "")
    assert visible == 0
