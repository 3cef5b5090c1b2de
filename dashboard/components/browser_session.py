"""The browser's hold on its server-side session across reloads: an HttpOnly, SameSite=Strict cookie.

Streamlit's session state lives in one websocket connection, so a reload used to sign the user out. The
cookie carries the server-side session's token (``warehouse/security/sessions.py``), so signing out or
revoking still ends it at once: the token is checked on every page load like any other.

Why a Set-Cookie route (``dashboard/asgi.py``) and not a cookie written by JavaScript (a custom component or
a cookie package): only a response header can set ``HttpOnly``, so no script in the page — including an
injected one — can ever read the token. The page never hands the token to the browser either: it hands out a
one-time code (256 bits, valid two minutes, used once) that a tiny inline script posts to the route, which
answers with the cookie. Streamlit reads cookies (``st.context.cookies``) when the page connects.

The codes are kept in this process: the route and the app run in the same server process
(``streamlit run dashboard/asgi.py``). Without that route (``streamlit run dashboard/app.py``, AppTest) the
post fails quietly and a reload asks to sign in again, as before.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import streamlit as st
import streamlit.components.v1 as components

COOKIE = "vetconnect_session"
ROUTE = "/_vetconnect/session"
HANDOFF_SECONDS = 120.0

_lock = threading.Lock()
_handoffs: dict[str, tuple[str, float]] = {}  # one-time code -> (session token, monotonic deadline)


def handoff(token: str) -> str:
    """A one-time code the browser exchanges for the cookie holding ``token``."""
    code = secrets.token_urlsafe(32)
    now = time.monotonic()
    with _lock:
        for stale in [c for c, (_, deadline) in _handoffs.items() if deadline < now]:
            del _handoffs[stale]
        _handoffs[code] = (token, now + HANDOFF_SECONDS)
    return code


def redeem(code: str) -> str | None:
    """The token for a code, once; None for an unknown, used or expired code."""
    with _lock:
        token, deadline = _handoffs.pop(code, (None, 0.0))
    return token if token is not None and deadline >= time.monotonic() else None


def pending(code: str) -> bool:
    with _lock:
        return code in _handoffs


def cookie_token() -> str | None:
    """The session token the browser sent when this page connected."""
    token = st.context.cookies.get(COOKIE)
    return token if isinstance(token, str) and token else None  # AppTest's stand-in context gives a mock


def _post(method: str, body: dict[str, str] | None) -> None:
    # An inline script in a zero-height component frame (same origin as the app, so the cookie is the app's).
    payload = "" if body is None else f", body: {json.dumps(json.dumps(body))}"
    components.html(
        f"<script>fetch({json.dumps(ROUTE)}, {{method: {json.dumps(method)}, credentials: 'same-origin', "
        f"headers: {{'Content-Type': 'application/json'}}{payload}}}).catch(() => {{}});</script>",
        height=0,
    )


def remember_in_browser(code: str) -> None:
    """Have the browser exchange ``code`` for the session cookie."""
    _post("POST", {"code": code})


def forget_in_browser() -> None:
    """Have the browser drop the session cookie (after sign-out; the server session has already ended)."""
    _post("DELETE", None)
