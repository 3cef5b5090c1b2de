"""One-time links with which a user an administrator added sets their own password.

The administrator never chooses or sees the new user's password: adding a user gives them an unusable random
one and an invitation, a random token shown once (as a link) and stored only as its SHA-256, like a sign-in
session's. The link expires after ``INVITATION_TTL`` and works once; issuing a new one voids the older ones.
Accepting happens before anyone is signed in, so it runs in the audited system session, like sign-in.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from warehouse.kernel.errors import DomainError
from warehouse.kernel.tenancy import system_session
from warehouse.schema.tenancy import AppUser, UserInvitation
from warehouse.security.passwords import WeakPassword, check_policy, hash_password
from warehouse.security.sessions import token_digest

INVITATION_TTL = dt.timedelta(days=3)


class InvitationError(DomainError):
    """An invitation that cannot be used, or a password it cannot set; ``field`` names the form field."""


@dataclass(frozen=True)
class Invitation:
    user_id: int
    token: str  # shown once to the administrator, never stored
    expires_at: dt.datetime


def issue(session: Session, *, user_id: int, created_by: int | None, now: dt.datetime) -> Invitation:
    """A new invitation for ``user_id`` (system session); the user's older unused ones stop working."""
    session.execute(
        update(UserInvitation)
        .where(UserInvitation.user_id == user_id, UserInvitation.used_at.is_(None))
        .values(expires_at=func.least(UserInvitation.expires_at, now))
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + INVITATION_TTL
    session.add(
        UserInvitation(
            user_id=user_id, token_sha256=token_digest(token), created_by=created_by, expires_at=expires_at
        )
    )
    session.flush()
    return Invitation(user_id, token, expires_at)


def pending_user_ids(session: Session, user_ids: list[int], now: dt.datetime) -> set[int]:
    """Which of these users have an invitation that can still be used (system session)."""
    return set(
        session.scalars(
            select(UserInvitation.user_id).where(
                UserInvitation.user_id.in_(user_ids),
                UserInvitation.used_at.is_(None),
                UserInvitation.expires_at > now,
            )
        )
    )


def _usable(session: Session, token: str, now: dt.datetime) -> tuple[UserInvitation, AppUser]:
    invitation = session.scalar(
        select(UserInvitation).where(UserInvitation.token_sha256 == token_digest(token)).with_for_update()
    )
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        raise InvitationError(
            "token", "This invitation link is not valid (any more); ask your practice manager for a new one."
        )
    user = session.get(AppUser, invitation.user_id, with_for_update=True)
    if user is None or not user.is_active:
        raise InvitationError("token", "This account has been deactivated.")
    return invitation, user


def invited_username(admin_engine: Engine, token: str, *, now: dt.datetime | None = None) -> str:
    """The user name an invitation is for (the set-password form shows it), or InvitationError."""
    now = now or dt.datetime.now(dt.UTC)
    with system_session(admin_engine, reason="open an invitation link") as session:
        return _usable(session, token, now)[1].username


def accept(
    admin_engine: Engine, token: str, *, password: str, repeat: str, now: dt.datetime | None = None
) -> str:
    """Set the invited user's password and use the invitation up; returns their user name (to sign in with)."""
    now = now or dt.datetime.now(dt.UTC)
    with system_session(admin_engine, reason="accept an invitation") as session:
        invitation, user = _usable(session, token, now)
        if password != repeat:
            raise InvitationError("repeat", "The two passwords differ.")
        try:
            check_policy(password, username=user.username)
        except WeakPassword as exc:
            raise InvitationError("password", str(exc).capitalize() + ".") from None
        user.password_hash = hash_password(password)
        user.password_changed_at = now
        user.failed_logins = 0
        user.locked_until = None
        invitation.used_at = now
        return user.username
