"""The signed-in user as pages see it: the access context (from the practice switcher), the actor, engines.

Pages never build an access context themselves: they call :func:`tenant`, which uses the context of the
signed-in user narrowed by their own choice in the switcher (validated by ``context_for_choice``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session

from dashboard.runtime import app_runtime
from warehouse.scheduling import PRACTICE_TZ, Actor
from warehouse.security.signin import SignedInUser, context_for_choice
from warehouse.tenancy import AccessContext, tenant_session

TZ = PRACTICE_TZ
ALL_PRACTICES = "all"


def user() -> SignedInUser:
    signed_in = st.session_state.get("user")
    if signed_in is None:
        st.stop()
    return signed_in


def practice_choice() -> int | None:
    choice = st.session_state.get("practice_choice")
    signed_in = user()
    if choice == ALL_PRACTICES and signed_in.may_choose_all_practices:
        return None
    if isinstance(choice, int) and choice in signed_in.context.practice_ids:
        return choice
    if signed_in.may_choose_all_practices:
        return None
    return signed_in.context.practice_ids[0] if signed_in.context.practice_ids else None


def context() -> AccessContext:
    return context_for_choice(user(), practice_choice())


def actor() -> Actor:
    signed_in = user()
    return Actor(signed_in.user_id, signed_in.roles)


@contextmanager
def tenant() -> Iterator[Session]:
    """One transaction under the signed-in user's current context (RLS + the literal practice filter)."""
    with tenant_session(app_runtime().app_engine, context()) as session:
        yield session


def practice_name(practice_id: int) -> str:
    return next((p.name for p in user().practices if p.id == practice_id), str(practice_id))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def breadcrumbs(*trail: str) -> None:
    st.caption(" › ".join(["VetConnect", *trail]))


def field_errors(errors: dict[str, str], slots: dict[str, object]) -> None:
    """Show each error under its field (``slots`` are ``st.empty()`` placeholders put after each widget)."""
    for field, message in errors.items():
        slot = slots.get(field)
        if slot is not None:
            slot.error(message)  # type: ignore[attr-defined]
        else:
            st.error(message)
