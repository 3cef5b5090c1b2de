"""What signed-in users change about their own account: password and second factor.

These run in the user's own tenant session: the ``own_account`` policy lets the application role update only
the row of ``app.user_id``, and only the password and MFA columns. The role cannot select credential columns
(migration 0403); the user's own come from ``own_credentials()``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, text
from sqlalchemy.orm import Session

from warehouse.schema.tenancy import AppUser
from warehouse.security import mfa
from warehouse.security.passwords import WeakPassword, check_policy, hash_password, verify_password
from warehouse.security.sessions import revoke_sessions
from warehouse.security.signin import MFA_REQUIRED_ROLES


class AccountChangeError(ValueError):
    """A change that was refused; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _me(session: Session, user_id: int) -> AppUser:
    user = session.get(AppUser, user_id)
    if user is None:
        raise AccountChangeError("current", "account not found")
    return user


def _own_credentials(session: Session) -> tuple[str, bytes | None]:
    """(password hash, encrypted TOTP secret) of the signed-in user — nobody else's is readable."""
    row = session.execute(text("SELECT password_hash, totp_secret_enc FROM own_credentials()")).one()
    return row.password_hash, row.totp_secret_enc


def change_password(
    session: Session, user_id: int, *, current: str, new: str, repeat: str, current_session_id: int | None
) -> int:
    """Set a new password and end the user's other sessions (someone who knew the old password may have
    one); returns how many were ended. The session it was changed from stays signed in."""
    user = _me(session, user_id)
    password_hash, _ = _own_credentials(session)
    if not verify_password(password_hash, current):
        raise AccountChangeError("current", "The current password is not correct.")
    if new != repeat:
        raise AccountChangeError("repeat", "The two new passwords differ.")
    if new == current:
        raise AccountChangeError("new", "Choose a password different from the current one.")
    try:
        check_policy(new, username=user.username)
    except WeakPassword as exc:
        raise AccountChangeError("new", str(exc).capitalize() + ".") from None
    user.password_hash = hash_password(new)
    user.password_changed_at = func.now()
    session.flush()
    return revoke_sessions(session, user_id, reason="password changed", except_session_id=current_session_id)


def confirm_mfa_enrolment(
    session: Session, user_id: int, enrolment: mfa.Enrolment, code: str, *, master_key: bytes
) -> None:
    step = mfa.accepted_step(enrolment.secret, code)
    if step is None:
        raise AccountChangeError("code", "That code does not match; check the time on your phone and retry.")
    user = _me(session, user_id)
    user.totp_secret_enc = mfa.encrypt_secret(master_key, user_id, enrolment.secret)
    user.mfa_enabled = True
    user.totp_last_step = step
    session.flush()


def disable_mfa(
    session: Session, user_id: int, roles: frozenset[str], *, code: str, master_key: bytes
) -> None:
    if roles & MFA_REQUIRED_ROLES:
        raise AccountChangeError("code", "Your role requires a second factor; it cannot be switched off.")
    user = session.get(AppUser, user_id, with_for_update=True)
    _, totp_secret_enc = _own_credentials(session)
    if user is None or not totp_secret_enc:
        raise AccountChangeError("code", "Two-step sign-in is not on.")
    secret = mfa.decrypt_secret(master_key, user_id, totp_secret_enc)
    if mfa.accepted_step(secret, code, last_step=user.totp_last_step) is None:
        raise AccountChangeError(
            "code", "That code is not valid (or was used already); wait for the next one."
        )
    user.totp_secret_enc = None
    user.mfa_enabled = False
    user.totp_last_step = None
    session.flush()


def account_status(session: Session, user_id: int) -> tuple[bool, dt.datetime, dt.datetime | None]:
    """(MFA on, password last changed, last sign-in)."""
    user = _me(session, user_id)
    return user.mfa_enabled, user.password_changed_at, user.last_login_at
