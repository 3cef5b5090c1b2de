"""Staff accounts, their memberships, and the practice set a user's transactions run with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.tenancy import ROLES, AppUser, Membership, Tenant
from warehouse.security.passwords import check_policy, hash_password

FRANCHISE_ROLES = frozenset({"franchise_admin", "franchise_manager", "analyst"})


class AccountError(ValueError):
    """An account request that cannot be carried out (duplicate user name, unknown role or tenant…)."""


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    full_name: str
    memberships: tuple[tuple[str, str], ...]  # (tenant code, role)


def add_user(
    session: Session,
    *,
    username: str,
    full_name: str,
    password: str,
    memberships: Iterable[tuple[int, str]],
    email: str | None = None,
) -> AppUser:
    """Create an account with an argon2id hash; the password must meet the policy."""
    username = username.strip().lower()
    if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
        raise AccountError(f"user name {username!r} is already taken")
    check_policy(password, username=username)
    user = AppUser(username=username, full_name=full_name, email=email, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    for tenant_id, role in memberships:
        grant_role(session, user_id=user.id, tenant_id=tenant_id, role=role)
    return user


def grant_role(session: Session, *, user_id: int, tenant_id: int, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise AccountError(f"no tenant with id {tenant_id}")
    if role in FRANCHISE_ROLES and tenant.kind != "franchise":
        raise AccountError(f"{role} is a franchise-level role; grant it on a franchise, not a {tenant.kind}")
    if role not in FRANCHISE_ROLES and tenant.kind == "franchise":
        raise AccountError(f"{role} is a practice-level role; grant it on a practice")
    session.merge(Membership(user_id=user_id, tenant_id=tenant_id, role=role))
    session.flush()


def deactivate_user(session: Session, user_id: int) -> None:
    """Switch an account off (system session): sign-in is refused and its sessions end at once (a trigger
    revokes them, migration 0401)."""
    user = session.get(AppUser, user_id, with_for_update=True)
    if user is None:
        raise AccountError(f"no user with id {user_id}")
    user.is_active = False
    session.flush()


def list_users(session: Session) -> list[UserRow]:
    rows = session.execute(
        select(AppUser.id, AppUser.username, AppUser.full_name, Tenant.code, Membership.role)
        .outerjoin(Membership, Membership.user_id == AppUser.id)
        .outerjoin(Tenant, Tenant.id == Membership.tenant_id)
        .order_by(AppUser.username, Tenant.code)
    ).all()
    users: dict[int, UserRow] = {}
    for user_id, username, full_name, code, role in rows:
        current = users.get(user_id) or UserRow(user_id, username, full_name, ())
        if role is not None:
            current = UserRow(user_id, username, full_name, (*current.memberships, (code, role)))
        users[user_id] = current
    return list(users.values())


def roles_by_practice(session: Session, user_id: int) -> dict[int, frozenset[str]]:
    """The roles a user holds at each practice they may see: a role at a practice (or at one of its
    departments) counts there, a franchise role at every practice of the franchise. Offboarded practices are
    excluded."""
    memberships = session.execute(
        select(Tenant.kind, Tenant.id, Tenant.practice_id, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id)
    ).all()
    roles: dict[int, set[str]] = {}
    for kind, _, practice_id, role in memberships:
        if kind != "franchise" and practice_id:
            roles.setdefault(practice_id, set()).add(role)
    by_franchise: dict[int, set[str]] = {}
    for kind, tenant_id, _, role in memberships:
        if kind == "franchise":
            by_franchise.setdefault(tenant_id, set()).add(role)
    if by_franchise:
        for practice_id, franchise_id in session.execute(
            select(Tenant.id, Tenant.franchise_id).where(
                Tenant.kind == "practice", Tenant.franchise_id.in_(by_franchise)
            )
        ):
            roles.setdefault(practice_id, set()).update(by_franchise[franchise_id])
    if roles:
        offboarded = set(
            session.scalars(select(Tenant.id).where(Tenant.id.in_(roles), Tenant.offboarded_at.is_not(None)))
        )
        for practice_id in offboarded:
            del roles[practice_id]
    return {practice_id: frozenset(held) for practice_id, held in sorted(roles.items())}


def practice_ids_for_user(session: Session, user_id: int) -> tuple[int, ...]:
    """Practices a user may see: those they hold a role at (:func:`roles_by_practice`)."""
    return tuple(roles_by_practice(session, user_id))


def access_context_for_user(session: Session, user_id: int) -> AccessContext:
    return AccessContext.for_practices(practice_ids_for_user(session, user_id), user_id=user_id)
