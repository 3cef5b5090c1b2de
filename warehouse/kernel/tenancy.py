"""Who may see what: the access context of a transaction, and the one audited bypass.

Every application transaction runs as ``vetconnect_app`` with ``app.user_id`` and ``app.practice_ids`` (and
``app.session_id``, which only the audit log reads) set through ``set_config(..., true)`` (transaction-local,
so a pooled connection never leaks a context). The policies in migration 0002 read them; with nothing set,
nothing is visible.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from warehouse.migrations.ddl import SYSTEM_ROLE
from warehouse.schema import Base, tenancy_of


@dataclass(frozen=True)
class AccessContext:
    """The identity and practice set a transaction runs with."""

    user_id: int | None
    practice_ids: tuple[int, ...]
    # The signed-in browser session (``user_session.id``) the transaction serves: the audit log records it,
    # so the audit viewer can say from which session a record was read or changed. None outside the app.
    session_id: int | None = None

    @classmethod
    def for_practices(
        cls, practice_ids: Sequence[int], user_id: int | None = None, session_id: int | None = None
    ) -> AccessContext:
        return cls(user_id=user_id, practice_ids=tuple(sorted(set(practice_ids))), session_id=session_id)

    @property
    def practice_ids_setting(self) -> str:
        return ",".join(str(int(p)) for p in self.practice_ids)


def apply_context(session: Session, context: AccessContext) -> None:
    session.execute(
        text(
            "SELECT set_config('app.user_id', :user_id, true), set_config('app.practice_ids', :practices, true),"
            " set_config('app.session_id', :session_id, true)"
        ),
        {
            "user_id": "" if context.user_id is None else str(context.user_id),
            "practices": context.practice_ids_setting,
            "session_id": "" if context.session_id is None else str(context.session_id),
        },
    )


def _partitioned_practice_entities() -> list[type]:
    return [
        mapper.class_
        for mapper in Base.registry.mappers
        if tenancy_of(mapper.local_table.info) == "practice"
        and "practice_id" in mapper.local_table.c
        and mapper.local_table.dialect_options["postgresql"].get("partition_by")
    ]


@functools.lru_cache(maxsize=4096)
def _partition_criteria(practice_ids: tuple[int, ...]) -> tuple[Any, ...]:
    """The ``practice_id IN (…)`` option of each partitioned practice table, built once per set of practices (59
    options for every table cost 2.3 ms a session to build and a cache-key walk on every statement)."""
    return tuple(
        with_loader_criteria(entity, entity.practice_id.in_(practice_ids), include_aliases=True)
        for entity in _partitioned_practice_entities()
    )


def _add_practice_criteria(session: Session, practice_ids: tuple[int, ...]) -> None:
    """Add ``practice_id IN (…)`` to every ORM statement on a table partitioned by practice.

    Not for security — the RLS policy is what isolates tenants — but for the planner: a policy's
    ``current_setting()`` is only known at run time, so without a literal filter PostgreSQL plans every
    practice partition (≈50 ms at 500 practices, see bench/tenancy.py). With it, partitions are pruned at
    plan time and a query under RLS costs what the same query with a hand-written WHERE costs. A table that is
    not partitioned has nothing to prune (the policy's condition is an index condition like any other), and a Core
    statement takes no loader criteria at all: both are left alone."""
    criteria = _partition_criteria(practice_ids)

    @event.listens_for(session, "do_orm_execute")
    def _scope_to_practices(state: ORMExecuteState) -> None:
        if state.is_orm_statement and (state.is_select or state.is_update or state.is_delete):
            state.statement = state.statement.options(*criteria)


@contextmanager
def tenant_session(engine: Engine, context: AccessContext) -> Iterator[Session]:
    """A session whose single transaction runs under ``context``; commits on success, rolls back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        apply_context(session, context)
        _add_practice_criteria(session, context.practice_ids)
        yield session


@contextmanager
def system_session(
    admin_engine: Engine, *, reason: str, actor_user_id: int | None = None
) -> Iterator[Session]:
    """The only way past RLS: an admin connection switched to the BYPASSRLS, non-superuser system role.
    The reason is written to ``system_access`` in the same transaction, so a bypass cannot go unrecorded."""
    if not reason.strip():
        raise ValueError("a system session needs a reason")
    with Session(admin_engine, expire_on_commit=False) as session, session.begin():
        session.execute(text(f"SET LOCAL ROLE {SYSTEM_ROLE}"))
        session.execute(
            text("SELECT set_config('app.user_id', :user_id, true)"),
            {"user_id": "" if actor_user_id is None else str(actor_user_id)},
        )
        session.execute(
            text("INSERT INTO system_access (reason, actor_user_id) VALUES (:reason, :actor)"),
            {"reason": reason, "actor": actor_user_id},
        )
        yield session
