"""Password sign-in: verifies the argon2id hash and returns who the user is and which practices they reach.

Looking a user up happens before any access context exists, so it goes through the audited system session.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from warehouse.schema.tenancy import AppUser, Membership
from warehouse.security.accounts import practice_ids_for_user
from warehouse.security.passwords import verify_password
from warehouse.tenancy import AccessContext, system_session


@dataclass(frozen=True)
class SignedInUser:
    user_id: int
    username: str
    full_name: str
    roles: frozenset[str]
    context: AccessContext


def authenticate(admin_engine: Engine, username: str, password: str) -> SignedInUser | None:
    """The signed-in user, or None for an unknown name or a wrong password (indistinguishable on purpose)."""
    with system_session(admin_engine, reason=f"sign-in of {username.strip().lower()!r}") as session:
        user = session.scalar(select(AppUser).where(AppUser.username == username.strip().lower()))
        if user is None or not user.is_active or not verify_password(user.password_hash, password):
            return None
        roles = frozenset(session.scalars(select(Membership.role).where(Membership.user_id == user.id)))
        practices = practice_ids_for_user(session, user.id)
        return SignedInUser(user.id, user.username, user.full_name, roles,
                            AccessContext.for_practices(practices, user_id=user.id))  # fmt: skip
