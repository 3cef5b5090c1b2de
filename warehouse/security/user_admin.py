"""User administration from the app: who an administrator sees, and what they may change about them.

The CLI's account functions (:mod:`warehouse.security.accounts`) check no permission; these do, "this
permission at this practice" (``USERS_MANAGE``):

- An administrator sees the users with a role at a practice where they hold ``USERS_MANAGE`` (or at one of its
  departments); one who holds it through a franchise role (the franchise admin) also sees the franchise's own
  roles. A user without any role is nobody's to see here (the CLI still lists them).
- Granting or revoking a practice-level role at a practice needs ``USERS_MANAGE`` there. A franchise-level role
  (franchise admin, franchise manager, analyst) counts at every practice of the franchise, so only someone who
  manages users through a franchise role of that franchise may grant or revoke it — never a practice manager.
- An account is one at every practice its user works at. Deactivating, reactivating, unlocking and resetting
  two-step sign-in therefore need ``USERS_MANAGE`` at *every* practice the user works at (and the franchise
  scope above for a user with a franchise role): a practice manager cannot lock a vet out of another practice,
  or touch the franchise admin's account. Ending someone's sessions only protects, so ``USERS_MANAGE`` at one
  practice they work at suffices.

Accounts and memberships are global tables the application role cannot write, so the changes run in the
audited system session once these checks have passed (with the administrator and their sign-in session
recorded). Each change is audited in the chain of every practice it affects: entity ``app_user``, the user's
id, and no personal data in the detail.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from warehouse.kernel.audit import record
from warehouse.kernel.errors import DomainError
from warehouse.kernel.tenancy import system_session
from warehouse.kernel.validation import InvalidEmail, normalise_email
from warehouse.schema.tenancy import ROLES, AppUser, Membership, Tenant, UserSession
from warehouse.security import invitations
from warehouse.security.accounts import FRANCHISE_ROLES, roles_by_practice
from warehouse.security.passwords import hash_password
from warehouse.security.permissions import USERS_MANAGE, Actor, NotPermitted, permissions_for, require
from warehouse.security.sessions import revoke_sessions

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
ROLE_LABELS = {role: role.replace("_", " ").capitalize() for role in ROLES}


class UserAdminError(DomainError):
    """A user-administration request the rules refuse; ``field`` names the form field."""


@dataclass(frozen=True)
class RoleHeld:
    tenant_id: int
    tenant_name: str
    role: str
    franchise_level: bool
    may_revoke: bool  # by the administrator who asked


@dataclass(frozen=True)
class ManagedUser:
    id: int
    username: str
    full_name: str
    email: str | None
    is_active: bool
    locked_until: dt.datetime | None  # only while the lock holds
    mfa_enabled: bool
    last_login_at: dt.datetime | None
    live_sessions: int
    invitation_pending: bool
    roles: tuple[RoleHeld, ...]
    may_change_account: bool  # deactivate, reactivate, unlock, reset two-step sign-in


@contextmanager
def _admin_session(
    admin_engine: Engine, actor: Actor, reason: str, session_id: int | None
) -> Iterator[Session]:
    with system_session(admin_engine, reason=reason, actor_user_id=actor.user_id) as session:
        # The audit entries name the administrator's sign-in session, as their own transactions' entries do.
        session.execute(
            text("SELECT set_config('app.session_id', :sid, true)"),
            {"sid": "" if session_id is None else str(session_id)},
        )
        yield session


def _franchise_of(session: Session, practice_id: int) -> int:
    franchise_id = session.scalar(
        select(Tenant.franchise_id).where(Tenant.id == practice_id, Tenant.kind == "practice")
    )
    if franchise_id is None:
        raise UserAdminError("practice", f"No practice with id {practice_id}.")
    return franchise_id


def _manages_franchise(session: Session, actor: Actor, franchise_id: int) -> bool:
    """Whether the actor manages users through a franchise-level role of this franchise: such a role is held on
    the franchise (``grant_role`` refuses it on a practice), so it shows among their roles at its practices."""
    franchise_managers = {r for r in FRANCHISE_ROLES if USERS_MANAGE in permissions_for({r})}
    practices = session.scalars(
        select(Tenant.id).where(Tenant.franchise_id == franchise_id, Tenant.kind == "practice")
    )
    return any(actor.roles_at(p) & franchise_managers for p in practices)


def grantable_roles(actor: Actor, practice_id: int) -> tuple[str, ...]:
    """The roles the actor may grant from ``practice_id``: the practice-level ones with ``USERS_MANAGE`` there;
    the franchise-level ones too when they manage users through a franchise role (held on the franchise, so it
    shows among their roles at each of its practices)."""
    if not actor.may(USERS_MANAGE, practice_id):
        return ()
    by_franchise = any(
        USERS_MANAGE in permissions_for({r}) for r in actor.roles_at(practice_id) & FRANCHISE_ROLES
    )
    return tuple(r for r in ROLES if r not in FRANCHISE_ROLES or by_franchise)


def _memberships(session: Session, user_ids: list[int]) -> list[tuple[int, Tenant, str]]:
    rows = session.execute(
        select(Membership.user_id, Tenant, Membership.role)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id.in_(user_ids))
        .order_by(Tenant.name, Membership.role)
    )
    return [(user_id, tenant, role) for user_id, tenant, role in rows]


def _in_scope(session: Session, actor: Actor, tenant: Tenant) -> bool:
    """Whether the actor manages roles held on this tenant (a practice, its department, or a franchise)."""
    if tenant.kind == "franchise":
        return _manages_franchise(session, actor, tenant.id)
    return actor.may(USERS_MANAGE, tenant.practice_id or tenant.id)


def _may_change_account(session: Session, actor: Actor, user_id: int) -> bool:
    works_at = roles_by_practice(session, user_id)
    if not works_at or not all(actor.may(USERS_MANAGE, p) for p in works_at):
        return False
    return all(
        _in_scope(session, actor, tenant)
        for _, tenant, _ in _memberships(session, [user_id])
        if tenant.kind == "franchise"
    )


def list_users(
    admin_engine: Engine, actor: Actor, practice_id: int, *, now: dt.datetime | None = None
) -> list[ManagedUser]:
    """The users with a role at ``practice_id`` (or its departments; with franchise scope, also the franchise's
    own roles), each with what this administrator may change about them."""
    require(actor, USERS_MANAGE, practice_id)
    now = now or dt.datetime.now(dt.UTC)
    with _admin_session(
        admin_engine, actor, f"user administration at practice {practice_id}", None
    ) as session:
        franchise_id = _franchise_of(session, practice_id)
        tenants = [practice_id, *session.scalars(select(Tenant.id).where(Tenant.practice_id == practice_id))]
        if _manages_franchise(session, actor, franchise_id):
            tenants.append(franchise_id)
        user_ids = sorted(
            set(session.scalars(select(Membership.user_id).where(Membership.tenant_id.in_(tenants))))
        )
        if not user_ids:
            return []
        held: dict[int, list[RoleHeld]] = {}
        for user_id, tenant, role in _memberships(session, user_ids):
            held.setdefault(user_id, []).append(
                RoleHeld(
                    tenant.id,
                    tenant.name,
                    role,
                    tenant.kind == "franchise",
                    _in_scope(session, actor, tenant),
                )
            )
        sessions = dict(
            session.execute(
                select(UserSession.user_id, func.count())
                .where(UserSession.user_id.in_(user_ids), UserSession.revoked_at.is_(None),
                       UserSession.expires_at > now)
                .group_by(UserSession.user_id)
            ).all()
        )  # fmt: skip
        pending = invitations.pending_user_ids(session, user_ids, now)
        users = session.scalars(select(AppUser).where(AppUser.id.in_(user_ids)).order_by(AppUser.full_name))
        return [
            ManagedUser(
                u.id, u.username, u.full_name, u.email, u.is_active,
                u.locked_until if u.locked_until and u.locked_until > now else None,
                u.mfa_enabled, u.last_login_at, sessions.get(u.id, 0), u.id in pending, tuple(held[u.id]),
                _may_change_account(session, actor, u.id),
            )
            for u in users
        ]  # fmt: skip


def _grant_target(
    session: Session, actor: Actor, practice_id: int, role: str
) -> tuple[Tenant, tuple[int, ...]]:
    """Where a role granted from ``practice_id`` is held (the practice, or its franchise for a franchise role)
    and the practices whose chains record it; refused outside the actor's scope."""
    require(actor, USERS_MANAGE, practice_id)
    if role not in ROLES:
        raise UserAdminError("role", f"Unknown role {role!r}.")
    practice = session.get(Tenant, practice_id)
    if practice is None or practice.kind != "practice":
        raise UserAdminError("practice", f"No practice with id {practice_id}.")
    if role not in FRANCHISE_ROLES:
        return practice, (practice_id,)
    if not _manages_franchise(session, actor, practice.franchise_id):
        raise NotPermitted(
            f"{ROLE_LABELS[role]} is a role at every practice of the franchise; only the franchise's "
            "administrator may grant or revoke it."
        )
    franchise = session.get(Tenant, practice.franchise_id)
    practices = tuple(session.scalars(select(Tenant.id).where(Tenant.franchise_id == franchise.id,
                                                              Tenant.kind == "practice")))  # fmt: skip
    return franchise, practices


def _audit(
    session: Session, practices: tuple[int, ...] | list[int], action: str, user_id: int, **detail: object
) -> None:
    for practice in practices:
        record(
            session,
            practice_id=practice,
            action=action,
            entity="app_user",
            entity_ids=[user_id],
            detail=detail,
        )


def _validated_new_user(username: str, full_name: str, email: str) -> tuple[str, str, str | None]:
    username = username.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise UserAdminError(
            "username",
            "Use 2 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    full_name = " ".join(full_name.split())
    if not full_name:
        raise UserAdminError("full_name", "Enter the person's name.")
    if len(full_name) > 200:
        raise UserAdminError("full_name", "At most 200 characters.")
    try:
        return username, full_name, normalise_email(email) if email.strip() else None
    except InvalidEmail as exc:
        raise UserAdminError("email", str(exc)) from None


def add_user(
    admin_engine: Engine, actor: Actor, practice_id: int, *, username: str, full_name: str, email: str,
    role: str, session_id: int | None = None, now: dt.datetime | None = None,
) -> invitations.Invitation:  # fmt: skip
    """Add a user with a first role and an invitation to set their password (its token is returned once)."""
    username, full_name, email_address = _validated_new_user(username, full_name, email)
    now = now or dt.datetime.now(dt.UTC)
    with _admin_session(admin_engine, actor, f"add user {username!r}", session_id) as session:
        tenant, practices = _grant_target(session, actor, practice_id, role)
        if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
            raise UserAdminError("username", f"The user name {username!r} is already taken.")
        # Nobody knows this password: the user sets their own through the invitation.
        user = AppUser(username=username, full_name=full_name, email=email_address,
                       password_hash=hash_password(secrets.token_urlsafe(32)))  # fmt: skip
        session.add(user)
        session.flush()
        session.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role))
        invitation = invitations.issue(session, user_id=user.id, created_by=actor.user_id, now=now)
        _audit(session, practices, "add_user", user.id, role=role, tenant_id=tenant.id)
        return invitation


def invite_again(
    admin_engine: Engine, actor: Actor, practice_id: int, user_id: int, *, session_id: int | None = None,
    now: dt.datetime | None = None,
) -> invitations.Invitation:  # fmt: skip
    """A new set-password link for a user who has not signed in yet (the old link expired or was lost); their
    older links stop working. Once someone has signed in, a link would let the administrator who holds it take
    their account over, so it is refused."""
    now = now or dt.datetime.now(dt.UTC)
    with _admin_session(admin_engine, actor, f"new invitation for user {user_id}", session_id) as session:
        practices = _account_scope(session, actor, practice_id, user_id)
        if _user(session, user_id).last_login_at is not None:
            raise UserAdminError(
                "user", "They have signed in already: an invitation is only for a first sign-in."
            )
        invitation = invitations.issue(session, user_id=user_id, created_by=actor.user_id, now=now)
        _audit(session, practices, "invite", user_id)
        return invitation


def grant_role(
    admin_engine: Engine,
    actor: Actor,
    practice_id: int,
    user_id: int,
    role: str,
    *,
    session_id: int | None = None,
) -> None:
    with _admin_session(admin_engine, actor, f"grant {role} to user {user_id}", session_id) as session:
        tenant, practices = _grant_target(session, actor, practice_id, role)
        if session.get(AppUser, user_id) is None:
            raise UserAdminError("user", f"No user with id {user_id}.")
        # Someone who works elsewhere only: bringing their account here is adding a user (with their own
        # administrators' say), not granting a role.
        if practice_id not in roles_by_practice(session, user_id) and not _may_change_account(
            session, actor, user_id
        ):
            raise NotPermitted("This user does not work at this practice; add them as a new user instead.")
        if session.get(Membership, (user_id, tenant.id, role)) is not None:
            raise UserAdminError("role", f"They are {ROLE_LABELS[role].lower()} at {tenant.name} already.")
        session.add(Membership(user_id=user_id, tenant_id=tenant.id, role=role))
        session.flush()  # the trigger ends their sessions: the new role counts from their next sign-in
        _audit(session, practices, "grant_role", user_id, role=role, tenant_id=tenant.id)


def revoke_role(
    admin_engine: Engine,
    actor: Actor,
    user_id: int,
    tenant_id: int,
    role: str,
    *,
    session_id: int | None = None,
) -> None:
    """Take a role back where it is held (a practice, a department of one, or a franchise)."""
    with _admin_session(admin_engine, actor, f"revoke {role} from user {user_id}", session_id) as session:
        tenant = session.get(Tenant, tenant_id)
        membership = session.get(Membership, (user_id, tenant_id, role))
        if tenant is None or membership is None:
            raise UserAdminError("role", "They do not hold that role (any more).")
        if tenant.kind == "franchise":
            practice = session.scalar(select(Tenant.id).where(Tenant.franchise_id == tenant.id,
                                                              Tenant.kind == "practice").limit(1))  # fmt: skip
            if practice is None:
                raise UserAdminError("role", f"{tenant.name} has no practice.")
            _, practices = _grant_target(session, actor, practice, role)
        else:
            practice = tenant.practice_id or tenant.id
            require(actor, USERS_MANAGE, practice)
            practices = (practice,)
        if user_id == actor.user_id and role in {"practice_manager", "franchise_admin"}:
            raise UserAdminError("role", "You cannot take your own administrator role; ask another one.")
        session.execute(delete(Membership).where(Membership.user_id == user_id, Membership.tenant_id == tenant_id,
                                                 Membership.role == role))  # fmt: skip
        _audit(session, practices, "revoke_role", user_id, role=role, tenant_id=tenant_id)


def _account_scope(session: Session, actor: Actor, practice_id: int, user_id: int) -> list[int]:
    """The practices the user works at, once the actor may change their account from ``practice_id``."""
    require(actor, USERS_MANAGE, practice_id)
    works_at = list(roles_by_practice(session, user_id))
    if practice_id not in works_at:
        raise UserAdminError("user", "This user does not work at this practice.")
    if not _may_change_account(session, actor, user_id):
        raise NotPermitted(
            "This user also works where you do not manage users (another practice, or the whole franchise); "
            "their account can be changed only by someone who manages users everywhere they work."
        )
    return works_at


def _user(session: Session, user_id: int) -> AppUser:
    user = session.get(AppUser, user_id, with_for_update=True)
    if user is None:
        raise UserAdminError("user", f"No user with id {user_id}.")
    return user


def set_active(
    admin_engine: Engine, actor: Actor, practice_id: int, user_id: int, active: bool, *,
    session_id: int | None = None,
) -> None:  # fmt: skip
    """Deactivate (sign-in refused, sessions ended by the trigger) or reactivate an account."""
    if not active and user_id == actor.user_id:
        raise UserAdminError("user", "You cannot deactivate your own account.")
    verb = "reactivate" if active else "deactivate"
    with _admin_session(admin_engine, actor, f"{verb} user {user_id}", session_id) as session:
        practices = _account_scope(session, actor, practice_id, user_id)
        user = _user(session, user_id)
        if user.is_active == active:
            raise UserAdminError("user", f"The account is {'active' if active else 'deactivated'} already.")
        user.is_active = active
        session.flush()
        _audit(session, practices, verb, user_id)


def unlock(
    admin_engine: Engine, actor: Actor, practice_id: int, user_id: int, *, session_id: int | None = None
) -> None:
    """Lift the lock after repeated failed sign-ins (and start counting failures afresh)."""
    with _admin_session(admin_engine, actor, f"unlock user {user_id}", session_id) as session:
        practices = _account_scope(session, actor, practice_id, user_id)
        user = _user(session, user_id)
        user.failed_logins = 0
        user.locked_until = None
        _audit(session, practices, "unlock", user_id)


def reset_mfa(
    admin_engine: Engine, actor: Actor, practice_id: int, user_id: int, *, session_id: int | None = None
) -> int:
    """Forget the user's second factor (a lost phone): their next sign-in sets it up again if their role
    requires it. Their sessions end too, since whoever has the phone may hold one. Returns how many ended."""
    with _admin_session(
        admin_engine, actor, f"reset two-step sign-in of user {user_id}", session_id
    ) as session:
        practices = _account_scope(session, actor, practice_id, user_id)
        user = _user(session, user_id)
        user.totp_secret_enc = None
        user.mfa_enabled = False
        user.totp_last_step = None
        ended = revoke_sessions(session, user_id, reason="revoked by an administrator")
        _audit(session, practices, "reset_mfa", user_id, sessions_ended=ended)
        return ended


def end_sessions(
    admin_engine: Engine, actor: Actor, practice_id: int, user_id: int, *, session_id: int | None = None
) -> int:
    """Sign the user out everywhere; returns how many live sessions ended."""
    require(actor, USERS_MANAGE, practice_id)
    with _admin_session(admin_engine, actor, f"end the sessions of user {user_id}", session_id) as session:
        works_at = list(roles_by_practice(session, user_id))
        if practice_id not in works_at:
            raise UserAdminError("user", "This user does not work at this practice.")
        ended = revoke_sessions(session, user_id, reason="revoked by an administrator")
        _audit(session, works_at, "end_sessions", user_id, sessions_ended=ended)
        return ended
