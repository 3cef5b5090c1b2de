"""The signed-in user as pages see it: the access context (from the practice switcher), the actor, engines.

Pages never build an access context themselves: they call :func:`tenant`, which uses the context of the
signed-in user narrowed by their own choice in the switcher (validated by ``context_for_choice``).

The browser session's authority is the token of its server-side session: :func:`signed_in_user` (called by
the entry point on every page load) validates it and signs the browser session out when the server says the
session has ended. The profile kept beside it (roles, practices) is what the user signed in with; a change of
roles revokes the server session (migration 0401), so the profile cannot outlive it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import streamlit as st
from sqlalchemy.orm import Session

from dashboard.components import browser_session
from dashboard.runtime import app_runtime, master_key_if_set
from warehouse.integration.gateway import install_write_through
from warehouse.kernel import formatting
from warehouse.kernel.practice_time import practice_zone
from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.security.permissions import Actor
from warehouse.security.sessions import ENDED_MESSAGES, check_session, end_session
from warehouse.security.signin import SignedInUser, context_for_choice, resume_session

ALL_PRACTICES = "all"


@dataclass(frozen=True)
class OidcProvider:
    name: (
        str | None
    )  # the [auth.NAME] section for st.login; None: the default provider (keys right in [auth])
    label: str


def oidc_provider() -> OidcProvider | None:
    """The identity provider configured for ``st.login`` in secrets.toml, or None (then only local accounts).

    One provider: either the keys directly in ``[auth]`` or the first ``[auth.NAME]`` section. The button
    says "Sign in with <display_name>" (an extra key VetConnect reads; Streamlit ignores it)."""
    if not st.secrets.load_if_toml_exists():
        return None
    auth = st.secrets.get("auth")
    if not auth or "redirect_uri" not in auth or "cookie_secret" not in auth:
        return None
    if "client_id" in auth:
        return OidcProvider(None, str(auth.get("display_name", "single sign-on")))
    for name, section in auth.items():
        if isinstance(section, Mapping) and "client_id" in section:
            return OidcProvider(name, str(section.get("display_name", name.capitalize())))
    return None


def user_agent() -> str | None:
    """The browser's User-Agent header (shown in the user's list of sessions), when there is a browser."""
    return st.context.headers.get("User-Agent")


def signed_in_user() -> SignedInUser | None:
    """The signed-in user if their server-side session is still valid; otherwise sign the browser session
    out (the sign-in page then says why) and return None."""
    signed_in = st.session_state.get("user")
    if signed_in is None:
        return _resume_from_cookie()
    if signed_in.session_token is None:
        sign_out(ENDED_MESSAGES["unknown"])
        return None
    check = check_session(app_runtime().app_engine, signed_in.session_token)
    if check.ended is not None or check.user_id != signed_in.user_id:
        sign_out(check.message)
        return None
    return signed_in


def _resume_from_cookie() -> SignedInUser | None:
    """After a reload: the server-side session the browser's cookie names, if it is still valid. A cookie
    refused once is not tried again in this browser session (the browser is asked to drop it)."""
    token = browser_session.cookie_token()
    if token is None or st.session_state.get("browser.refused") == token:
        return None
    runtime = app_runtime()
    resumed = resume_session(runtime.admin_engine, runtime.app_engine, token)
    if not isinstance(resumed, SignedInUser):
        st.session_state["browser.refused"] = token
        st.session_state["browser.forget"] = True
        st.session_state["signed_out_reason"] = resumed.message
        return None
    st.session_state["user"] = resumed
    st.session_state["browser.remembered"] = resumed.session_id  # the browser holds it already
    return resumed


def keep_in_browser(signed_in: SignedInUser) -> None:
    """Render the (invisible) hand-over of the session cookie until the browser has taken it; or, signed
    out, the request to drop it. Called by the entry point in the sidebar, which survives page switches, so
    the request is not cut off by the next page."""
    state = st.session_state
    if signed_in.session_token is not None and state.get("browser.remembered") != signed_in.session_id:
        state["browser.code"] = browser_session.handoff(signed_in.session_token)
        state["browser.remembered"] = signed_in.session_id
    code = state.get("browser.code")
    if code is not None:
        if browser_session.pending(code):
            browser_session.remember_in_browser(code)
        else:
            state.pop("browser.code")


def forget_in_browser() -> None:
    if st.session_state.get("browser.forget"):
        browser_session.forget_in_browser()


def sign_out(reason: str | None = None, *, end_server_session: bool = False) -> None:
    """Forget everything of this browser session; with ``end_server_session``, revoke it on the server first
    (the sign-out button), so the token is worthless even if it was copied. After an OIDC sign-in the user
    chose to end, Streamlit's identity cookie goes too (``st.logout`` reloads the app)."""
    signed_in = st.session_state.get("user")
    if end_server_session and signed_in is not None and signed_in.session_id is not None:
        with tenant_session(app_runtime().app_engine, signed_in.context) as session:
            end_session(session, signed_in.session_id)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    # The page's cookie (read when it connected) names the session that just ended: do not resume it, and
    # have the browser drop it.
    st.session_state["browser.refused"] = browser_session.cookie_token()
    st.session_state["browser.forget"] = True
    if reason:
        st.session_state["signed_out_reason"] = reason
    if end_server_session and signed_in is not None and signed_in.sign_in_method == "oidc":
        st.logout()


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


def permissions() -> frozenset[str]:
    """What the user may do where they work now: the permissions their roles grant at the practice chosen in
    the switcher (with "All practices", those held at every one of them)."""
    return user().permissions_in(context().practice_ids)


def roles_here() -> frozenset[str]:
    """The user's roles at the practices chosen in the switcher (what their own task list is made of)."""
    signed_in = user()
    return frozenset().union(*(signed_in.practice_roles.get(p, frozenset()) for p in context().practice_ids))


def may(permission: str) -> bool:
    return permission in permissions()


def actor() -> Actor:
    """The user as the services see them: roles per practice, checked at the practice each write goes to."""
    return user().actor()


@contextmanager
def tenant() -> Iterator[Session]:
    """One transaction under the signed-in user's current context (RLS + the literal practice filter). A write of
    a linked practice in a module Animana still owns goes to Animana as it commits (`gateway`); without a master
    key nothing of a client can be written here, so nothing needs to go through."""
    runtime = app_runtime()
    with tenant_session(runtime.app_engine, context()) as session:
        master_key = master_key_if_set()
        if master_key is not None:
            install_write_through(session, runtime.upstream_sender, master_key=master_key)
        yield session


def one_practice(key: str) -> int:
    """The practice a single-practice workspace shows: the only one of the context, or the one the user picks
    (``key`` keeps each workspace's own choice)."""
    practice_ids = context().practice_ids
    if len(practice_ids) == 1:
        return practice_ids[0]
    names = {p.id: p.name for p in user().practices}
    return st.selectbox("Practice", practice_ids, format_func=names.get, key=key)


def practice_name(practice_id: int) -> str:
    return next((p.name for p in user().practices if p.id == practice_id), str(practice_id))


def here() -> str:
    """Where the user works now, for messages: the practice chosen in the switcher, or "all your practices"."""
    practice_ids = context().practice_ids
    return practice_name(practice_ids[0]) if len(practice_ids) == 1 else "all your practices"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def zone(practice_id: int | None = None) -> ZoneInfo:
    """The local time of ``practice_id`` (its ``tenant.timezone``), or of where the user works now: the
    practice chosen in the switcher, with "All practices" the first of them (a page about one practice
    passes its id). A user without any practice reads the default zone of the formats."""
    if practice_id is None:
        practice_ids = context().practice_ids
        if not practice_ids:
            return formatting.DEFAULT_TZ
        practice_id = practice_ids[0]
    with tenant() as session:
        return practice_zone(session, practice_id)


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
