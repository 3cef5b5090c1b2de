"""Who may see what: the access context of a transaction, and the one audited bypass.

Every application transaction runs as ``vetconnect_app`` with ``app.user_id`` and ``app.practice_ids`` set
through ``set_config(..., true)`` (transaction-local, so a pooled connection never leaks a context). The
policies in migration 0002 read them; with nothing set, nothing is visible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from warehouse.migrations.ddl import SYSTEM_ROLE


@dataclass(frozen=True)
class AccessContext:
    """The identity and practice set a transaction runs with."""

    user_id: int | None
    practice_ids: tuple[int, ...]

    @classmethod
    def for_practices(cls, practice_ids: Sequence[int], user_id: int | None = None) -> AccessContext:
        return cls(user_id=user_id, practice_ids=tuple(sorted(set(practice_ids))))

    @property
    def practice_ids_setting(self) -> str:
        return ",".join(str(int(p)) for p in self.practice_ids)


def apply_context(session: Session, context: AccessContext) -> None:
    session.execute(
        text(
            "SELECT set_config('app.user_id', :user_id, true), set_config('app.practice_ids', :practices, true)"
        ),
        {
            "user_id": "" if context.user_id is None else str(context.user_id),
            "practices": context.practice_ids_setting,
        },
    )


@contextmanager
def tenant_session(engine: Engine, context: AccessContext) -> Iterator[Session]:
    """A session whose single transaction runs under ``context``; commits on success, rolls back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        apply_context(session, context)
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
