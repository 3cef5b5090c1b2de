"""Server-side sign-in sessions: what a browser session holds is a random token, nothing more authoritative.

A session is a ``user_session`` row keyed by the SHA-256 of the token (the token has 256 bits of entropy, so
a fast hash is enough: there is nothing to brute-force). Every page load calls :func:`check_session`, which
runs ``touch_user_session`` in the database: it refuses a revoked session, ends a session idle for longer
than ``IDLE_TIMEOUT`` or older than ``ABSOLUTE_TIMEOUT`` (by the database clock), and otherwise records the
activity. Sessions end by sign-out, sign-out everywhere, a password change (the others), an administrator,
deactivating the account or a change of the user's roles (the last two by triggers, see migration 0401).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from warehouse.schema.tenancy import UserSession

IDLE_TIMEOUT = dt.timedelta(hours=8)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)
_USER_AGENT_CHARS = 400

# Why a session ended (``user_session.revoked_reason``), as the sign-in page says it.
ENDED_MESSAGES = {
    "signed out": "You signed out.",
    "signed out everywhere": "You signed out on every device.",
    "password changed": "Your password was changed, so your other sessions were ended. Sign in again.",
    "revoked by an administrator": "An administrator ended your session. Sign in again.",
    "account deactivated": "This account has been deactivated.",
    "roles changed": "Your roles or practices changed. Sign in again to continue with them.",
    "idle timeout": f"Signed out after {IDLE_TIMEOUT.total_seconds() / 3600:.0f} hours without activity.",
    "absolute timeout": f"Signed out: sessions last at most {ABSOLUTE_TIMEOUT.total_seconds() / 3600:.0f} hours.",
    "unknown": "Your session is no longer valid. Sign in again.",
}


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def open_session(
    session: Session, user_id: int, *, method: str, user_agent: str | None = None
) -> tuple[int, str]:
    """Start a session for a user who has just proved who they are; returns (session id, token). The token
    goes to the browser session and nowhere else: only its digest is stored."""
    token = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user_id,
        token_sha256=token_digest(token),
        method=method,
        user_agent=user_agent[:_USER_AGENT_CHARS] if user_agent else None,
        idle_timeout=IDLE_TIMEOUT,
        expires_at=func.now() + ABSOLUTE_TIMEOUT,
    )
    session.add(row)
    session.flush()
    return row.id, token


@dataclass(frozen=True)
class SessionCheck:
    user_id: int | None
    session_id: int | None
    ended: str | None  # a key of ENDED_MESSAGES, or None while the session is valid

    @property
    def message(self) -> str:
        return ENDED_MESSAGES.get(self.ended or "", ENDED_MESSAGES["unknown"])


def check_session(app_engine: Engine, token: str) -> SessionCheck:
    """Validate a browser session's token and record the activity (one database round trip, as the
    application role: ``touch_user_session`` is the only way that role can find a row by its digest)."""
    with app_engine.begin() as conn:
        user_id, session_id, ended = conn.execute(
            text("SELECT user_id, session_id, ended FROM touch_user_session(:digest)"),
            {"digest": token_digest(token)},
        ).one()
    return SessionCheck(user_id, session_id, ended)


def end_session(session: Session, session_id: int, *, reason: str = "signed out") -> None:
    """Sign-out of one session; under the user's own context the policy allows only their own sessions."""
    session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=reason)
    )


def revoke_sessions(
    session: Session, user_id: int, *, reason: str, except_session_id: int | None = None
) -> int:
    """End every live session of a user (but ``except_session_id``); returns how many were ended.

    In the user's own context this is "sign out everywhere" or the password change; in a system session it
    is an administrator ending someone's sessions (the system session records who and why)."""
    statement = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=reason)
    )
    if except_session_id is not None:
        statement = statement.where(UserSession.id != except_session_id)
    return session.execute(statement).rowcount


@dataclass(frozen=True)
class SessionRow:
    id: int
    method: str
    user_agent: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime


def live_sessions(session: Session, user_id: int) -> list[SessionRow]:
    """A user's sessions that are not ended (expiry is decided at their next page load), newest first."""
    rows = session.execute(
        select(
            UserSession.id, UserSession.method, UserSession.user_agent, UserSession.created_at,
            UserSession.last_seen_at,
        )
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
               UserSession.expires_at > func.now())
        .order_by(UserSession.created_at.desc())
    )  # fmt: skip
    return [SessionRow(*row) for row in rows]
