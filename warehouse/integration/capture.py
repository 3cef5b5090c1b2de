"""Who is writing, for the change-capture triggers (migration 0380): a transaction-local setting.

Unset (every service, page and raw statement of the application) is a local write: captured into the outbox.
``animana``: the sync's loader — its update of a row with an unacknowledged local change is held, not applied.
``writeback``: what Animana answered or what a settlement decided — neither captured nor held."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

Writer = Literal["animana", "writeback"]


def writing_as(session: Session, writer: Writer) -> None:
    """Mark the rest of ``session``'s transaction as written by ``writer`` (``set_config(…, true)``)."""
    session.execute(text("SELECT set_config('vetconnect.writer', :writer, true)"), {"writer": writer})


def writing_locally(session: Session) -> None:
    """Back to a local writer for the rest of the transaction (after storing an answer, before a local write)."""
    session.execute(text("SELECT set_config('vetconnect.writer', '', true)"))
