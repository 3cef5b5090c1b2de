"""Sign-in: password (argon2id), lockout after repeated failures, TOTP second factor, a server-side session.

Looking a user up happens before any access context exists, so it goes through the audited system session.

The flow is two steps. :func:`begin_sign_in` checks the password and returns one of
- :class:`SignedInUser` — done (no second factor needed),
- :class:`MfaChallenge` — enter the code from the authenticator app (:func:`complete_mfa`),
- :class:`MfaEnrolmentRequired` — the role requires MFA and none is set up yet: the user must scan a QR code
  and confirm a first code (:func:`complete_enrolment`) before anything else opens,
- :class:`Locked` — too many failures; says until when,
- :class:`Rejected` — unknown user name or wrong password (indistinguishable on purpose).
Wrong second-factor codes count as failures too, so the lockout also caps code guessing. A code is accepted
once: the accepted time step is stored under the user's row lock, so neither a replay nor two concurrent
sign-ins with the same code both pass. A successful sign-in opens a server-side session
(:mod:`warehouse.security.sessions`); :class:`SignedInUser` carries its token to the browser session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from warehouse.kernel.tenancy import AccessContext, system_session
from warehouse.schema.tenancy import AppUser, Membership, Tenant, UserSession
from warehouse.security import mfa
from warehouse.security.accounts import FRANCHISE_ROLES, roles_by_practice
from warehouse.security.passwords import hash_password, needs_rehash, verify_password
from warehouse.security.permissions import Actor, permissions_at
from warehouse.security.sessions import SessionCheck, check_session, open_session

MFA_REQUIRED_ROLES = frozenset({"franchise_admin", "franchise_manager", "practice_manager"})
MAX_FAILED_SIGN_INS = 5
LOCKOUT = dt.timedelta(minutes=15)
# The first step is valid this long; after it the password must be entered again.
CHALLENGE_TTL = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class PracticeChoice:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class SignedInUser:
    user_id: int
    username: str
    full_name: str
    roles: frozenset[str]  # every role the user holds somewhere (the sidebar, MFA); never a permission
    context: AccessContext
    practices: tuple[PracticeChoice, ...] = ()
    mfa_enabled: bool = False
    sign_in_method: str = "password"  # or "oidc"
    # The server-side session (None for a profile built without signing in, e.g. a page test).
    session_id: int | None = None
    session_token: str | None = field(default=None, repr=False, compare=False)
    # What the user may do is decided per practice: practice id -> the roles held there.
    practice_roles: Mapping[int, frozenset[str]] = field(default_factory=dict, hash=False)

    def permissions_in(self, practice_ids: Iterable[int]) -> frozenset[str]:
        """The permissions held at every one of these practices (the practices a page works on)."""
        return permissions_at(self.practice_roles, practice_ids)

    def actor(self) -> Actor:
        return Actor(self.user_id, self.practice_roles, {p.id: p.name for p in self.practices})

    @property
    def may_choose_all_practices(self) -> bool:
        """Franchise-level roles may work across every practice of their franchise at once."""
        return bool(self.roles & FRANCHISE_ROLES) and len(self.practices) > 1

    @property
    def mfa_required(self) -> bool:
        return bool(self.roles & MFA_REQUIRED_ROLES)


@dataclass(frozen=True)
class MfaChallenge:
    user_id: int
    username: str
    issued_at: dt.datetime
    method: str = "password"  # how the first step was passed: "password" or "oidc"


@dataclass(frozen=True)
class MfaEnrolmentRequired:
    user_id: int
    username: str
    issued_at: dt.datetime
    enrolment: mfa.Enrolment
    method: str = "password"


@dataclass(frozen=True)
class Locked:
    until: dt.datetime

    def message(self, tz: dt.tzinfo) -> str:
        local = self.until.astimezone(tz)
        return (
            f"This account is locked after {MAX_FAILED_SIGN_INS} failed sign-in attempts. "
            f"Try again after {local:%H:%M} ({local:%d-%m-%Y}), or ask a practice manager to unlock it."
        )


@dataclass(frozen=True)
class Rejected:
    reason: str = "Unknown user name or wrong password."


SignInOutcome = SignedInUser | MfaChallenge | MfaEnrolmentRequired | Locked | Rejected


def load_signed_in(
    session: Session, user: AppUser, *, method: str = "password", session_id: int | None = None,
    session_token: str | None = None,
) -> SignedInUser:  # fmt: skip
    """The profile a browser session works with: roles per practice, the practice set and their names."""
    roles = frozenset(session.scalars(select(Membership.role).where(Membership.user_id == user.id)))
    practice_roles = roles_by_practice(session, user.id)
    practice_ids = tuple(practice_roles)
    practices = tuple(
        PracticeChoice(pid, code, name)
        for pid, code, name in session.execute(
            select(Tenant.id, Tenant.code, Tenant.name)
            .where(Tenant.id.in_(practice_ids))
            .order_by(Tenant.name)
        )
    )
    return SignedInUser(
        user.id, user.username, user.full_name, roles,
        AccessContext.for_practices(practice_ids, user_id=user.id, session_id=session_id), practices,
        user.mfa_enabled,
        method, session_id, session_token, practice_roles,
    )  # fmt: skip


def resume_session(admin_engine: Engine, app_engine: Engine, token: str) -> SignedInUser | SessionCheck:
    """The profile of a server-side session a browser brings back (its cookie after a reload), or the check
    saying why that session has ended (signed out, revoked, timed out): the same check as every page load,
    so revocation ends a resumed session as at once as any other."""
    check = check_session(app_engine, token)
    if check.ended is not None or check.user_id is None:
        return check
    with system_session(admin_engine, reason=f"resume sign-in session {check.session_id}") as session:
        user = session.get(AppUser, check.user_id)
        method = session.scalar(select(UserSession.method).where(UserSession.id == check.session_id))
        if user is None or method is None:
            return SessionCheck(None, None, "unknown")
        return load_signed_in(session, user, method=method, session_id=check.session_id, session_token=token)


def _register_failure(user: AppUser, now: dt.datetime) -> Locked | Rejected:
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_SIGN_INS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0
        return Locked(user.locked_until)
    return Rejected()


def succeed(
    session: Session,
    user: AppUser,
    now: dt.datetime,
    *,
    method: str = "password",
    user_agent: str | None = None,
) -> SignedInUser:
    """The user has proved who they are: reset the failure count and open a server-side session."""
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session_id, token = open_session(session, user.id, method=method, user_agent=user_agent)
    return load_signed_in(session, user, method=method, session_id=session_id, session_token=token)


def _locked(user: AppUser, now: dt.datetime) -> Locked | None:
    return Locked(user.locked_until) if user.locked_until and user.locked_until > now else None


def _find(session: Session, username: str) -> AppUser | None:
    return session.scalar(
        select(AppUser).where(AppUser.username == username.strip().lower()).with_for_update()
    )


def begin_sign_in(
    admin_engine: Engine, username: str, password: str, *, now: dt.datetime | None = None,
    user_agent: str | None = None,
) -> SignInOutcome:  # fmt: skip
    now = now or _now()
    with system_session(admin_engine, reason=f"sign-in of {username.strip().lower()!r}") as session:
        user = _find(session, username)
        if user is None or not user.is_active:
            return Rejected()
        if locked := _locked(user, now):
            return locked
        if not verify_password(user.password_hash, password):
            return _register_failure(user, now)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        roles = set(session.scalars(select(Membership.role).where(Membership.user_id == user.id)))
        if user.mfa_enabled and user.totp_secret_enc:
            return MfaChallenge(user.id, user.username, now)
        if roles & MFA_REQUIRED_ROLES:
            return MfaEnrolmentRequired(user.id, user.username, now, mfa.new_enrolment(user.username))
        return succeed(session, user, now, user_agent=user_agent)


def complete_mfa(
    admin_engine: Engine,
    challenge: MfaChallenge,
    code: str,
    *,
    master_key: bytes,
    now: dt.datetime | None = None,
    user_agent: str | None = None,
) -> SignedInUser | Locked | Rejected:
    now = now or _now()
    if now - challenge.issued_at > CHALLENGE_TTL:
        return Rejected("The sign-in took too long; enter your password again.")
    with system_session(admin_engine, reason=f"second factor of user {challenge.user_id}") as session:
        # The row lock serialises concurrent attempts for this user: the second one reads the step the first
        # stored, so one code opens one session.
        user = session.get(AppUser, challenge.user_id, with_for_update=True)
        if user is None or not user.is_active or not user.totp_secret_enc:
            return Rejected()
        if locked := _locked(user, now):
            return locked
        secret = mfa.decrypt_secret(master_key, user.id, user.totp_secret_enc)
        step = mfa.accepted_step(secret, code, last_step=user.totp_last_step, at=now)
        if step is None:
            outcome = _register_failure(user, now)
            return (
                outcome
                if isinstance(outcome, Locked)
                else Rejected("That code is not valid (or was used already); wait for the next one.")
            )
        user.totp_last_step = step
        return succeed(session, user, now, method=challenge.method, user_agent=user_agent)


def complete_enrolment(
    admin_engine: Engine, pending: MfaEnrolmentRequired, code: str, *, master_key: bytes,
    now: dt.datetime | None = None, user_agent: str | None = None,
) -> SignedInUser | Rejected:  # fmt: skip
    """First sign-in of a user whose role requires MFA: store the secret once they prove their app has it."""
    now = now or _now()
    if now - pending.issued_at > CHALLENGE_TTL:
        return Rejected("The sign-in took too long; enter your password again.")
    step = mfa.accepted_step(pending.enrolment.secret, code, at=now)
    if step is None:
        return Rejected("That code does not match the QR code; check the time on your phone and try again.")
    with system_session(admin_engine, reason=f"MFA enrolment of user {pending.user_id}") as session:
        user = session.get(AppUser, pending.user_id, with_for_update=True)
        if user is None or not user.is_active:
            return Rejected()
        if user.mfa_enabled:  # a second tab (or a replay) confirming the same enrolment
            return Rejected("Two-step sign-in is already set up; enter your password again.")
        user.totp_secret_enc = mfa.encrypt_secret(master_key, user.id, pending.enrolment.secret)
        user.mfa_enabled = True
        user.totp_last_step = step
        return succeed(session, user, now, method=pending.method, user_agent=user_agent)


def authenticate(admin_engine: Engine, username: str, password: str) -> SignedInUser | None:
    """Password-only sign-in for users without a second factor (scripts, tests); None otherwise."""
    outcome = begin_sign_in(admin_engine, username, password)
    return outcome if isinstance(outcome, SignedInUser) else None


def context_for_choice(user: SignedInUser, practice_id: int | None) -> AccessContext:
    """The access context for the practice the user picked in the switcher (None: all their practices, only
    for franchise roles). A practice outside the user's own set is refused, so a page cannot widen access."""
    if practice_id is None:
        if user.may_choose_all_practices or len(user.context.practice_ids) <= 1:
            return user.context
        practice_id = user.context.practice_ids[0]
    if practice_id not in user.context.practice_ids:
        raise PermissionError(f"practice {practice_id} is not one of {user.username}'s practices")
    return AccessContext.for_practices([practice_id], user_id=user.user_id, session_id=user.session_id)
