"""Who is writing, for the change-capture triggers (migration 0380): a transaction-local setting.

Unset (every service, page and raw statement of the application) is a local write: captured into the outbox.
``animana``: the sync's loader — its update of a row with an unacknowledged local change is held, not applied.
``writeback``: what Animana answered or what a settlement decided — neither captured nor held."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

Writer = Literal["animana", "writeback"]


def writing_as(session: Session, writer: str) -> None:
    """Mark the rest of ``session``'s transaction as written by ``writer`` (``set_config(…, true)``)."""
    session.execute(text("SELECT set_config('vetconnect.writer', :writer, true)"), {"writer": writer})


@contextmanager
def written_as(session: Session, writer: Writer, **settings: str) -> Iterator[None]:
    """``writer`` for the statements inside the block only; the transaction's writer before it afterwards (so a
    settlement inside the sync's transaction leaves it the sync's, and a resolution leaves later local writes
    captured). ``settings``: other transaction-local settings for the rest of the transaction, set in the same
    statement (each statement of a settlement is a round trip and ~0.3 ms on the server; the settlement made four
    before its first read)."""
    assigned = {"vetconnect.writer": writer, **settings}
    params: dict[str, str] = {}
    for i, (name, value) in enumerate(assigned.items()):
        params |= {f"name{i}": name, f"value{i}": value}
    setters = ", ".join(f"set_config(:name{i}, :value{i}, true)" for i in range(len(assigned)))
    # The target list is evaluated in order: the writer is read before it is replaced.
    previous = session.execute(
        text(f"SELECT current_setting('vetconnect.writer', true), {setters}"), params
    ).scalar()
    try:
        yield
    finally:
        session.execute(
            text("SELECT set_config('vetconnect.writer', :writer, true)"), {"writer": previous or ""}
        )


@contextmanager
def bookkeeping(session: Session) -> Iterator[None]:
    """The statements inside the block only stamp rows with what Animana answered (id, version, pending flag): the
    search-index and mart-queue triggers skip them (migration 0560), as they read none of those columns."""
    session.execute(text("SELECT set_config('vetconnect.bookkeeping', 'on', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('vetconnect.bookkeeping', 'off', true)"))
