"""The tenant hierarchy (franchise → practice → department), staff identities, memberships, integration modes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table


def choice(*values: str, name: str) -> Enum:
    """A text column restricted by a CHECK constraint: easier to evolve in migrations than a native enum."""
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


TENANT_KINDS = ("franchise", "practice", "department")
ROLES = (
    "franchise_admin",
    "franchise_manager",
    "practice_manager",
    "veterinarian",
    "nurse",
    "receptionist",
    "analyst",
)
MODULES = ("clients", "agenda", "records", "invoices")
MODES = ("animana", "hybrid", "native")


class Tenant(Base):
    """One row per franchise, practice and department. ``practice_id`` is the row itself for a practice and
    the owning practice for a department, so RLS can show a user exactly the practices (and their departments)
    in their access set."""

    __tablename__ = "tenant"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'franchise' AND parent_id IS NULL AND practice_id IS NULL AND franchise_id = id)"
            " OR (kind = 'practice' AND parent_id = franchise_id AND practice_id = id)"
            " OR (kind = 'department' AND parent_id = practice_id)",
            name="hierarchy",
        ),
        {"info": {"tenancy": "global"}},
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(choice(*TENANT_KINDS, name="tenant_kind"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"))
    franchise_id: Mapped[int] = mapped_column(index=True)
    practice_id: Mapped[int | None] = mapped_column(index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    # What a Dutch invoice must carry about the practice (migration 0310); issuing refuses without them.
    address: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(10))
    vat_number: Mapped[str | None] = mapped_column(String(14))  # btw-nummer, NL000000000B00
    kvk_number: Mapped[str | None] = mapped_column(String(8))  # Kamer van Koophandel, 8 digits
    iban: Mapped[str | None] = mapped_column(String(34))
    timezone: Mapped[str] = mapped_column(String(64), server_default="Europe/Amsterdam")
    animana_practice_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    offboarded_at: Mapped[dt.datetime | None]
    # A franchise's row: years an erased client's records are kept after their last activity (migration 0470).
    retention_years: Mapped[int] = mapped_column(SmallInteger, server_default="7")
    # What a message to an owner tells them to reach the practice by (migration 0540).
    phone: Mapped[str | None] = mapped_column(String(20))
    booking_url: Mapped[str | None] = mapped_column(String(300))


class AppUser(Base):
    """A staff identity. Global because one person can work at several practices (see Membership)."""

    __tablename__ = "app_user"
    __table_args__ = {"info": {"tenancy": "global"}}

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    # Deferred: the application role may not select these two (migration 0403), so loading a colleague's
    # account must not ask for them; sign-in reads them in the system session, self-service via
    # ``own_credentials()``.
    password_hash: Mapped[str] = mapped_column(String(255), deferred=True)
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # The last accepted TOTP time step (unix time // 30): a code is accepted only for a later step, so a code
    # seen over someone's shoulder or replayed from a proxy log cannot be used again while it is still valid.
    totp_last_step: Mapped[int | None]
    mfa_enabled: Mapped[bool] = mapped_column(server_default="false")
    failed_logins: Mapped[int] = mapped_column(server_default="0")
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    is_active: Mapped[bool] = mapped_column(server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class UserSession(Base):
    """A signed-in browser session. The browser's Streamlit session holds only a random token; this row holds
    its SHA-256, so revoking the row (sign-out everywhere, an admin, a deactivated account, a password or role
    change) ends the session at its next page load. Global like ``app_user``: not practice data."""

    __tablename__ = "user_session"
    __table_args__ = {"info": {"tenancy": "global"}}

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    method: Mapped[str] = mapped_column(choice("password", "oidc", name="sign_in_method"))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    idle_timeout: Mapped[dt.timedelta]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(200))


class OidcIdentity(Base):
    """An external (OIDC) identity an admin linked to an account: by issuer and subject, or — before the person
    first signs in — by issuer and e-mail, bound to the subject at the first sign-in with that e-mail verified.
    Nothing is provisioned from the identity provider: roles come only from ``membership``."""

    __tablename__ = "oidc_identity"
    __table_args__ = (
        CheckConstraint("subject IS NOT NULL OR email IS NOT NULL", name="subject_or_email"),
        UniqueConstraint("issuer", "subject"),
        UniqueConstraint("issuer", "email"),
        {"info": {"tenancy": "global"}},
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    linked_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    linked_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # The issue time of the last ID token that opened a session: a token opens at most one.
    last_id_token_issued_at: Mapped[dt.datetime | None]


class Membership(Base):
    """A role of a user at a tenant. At a franchise it covers every practice of the franchise."""

    __tablename__ = "membership"
    __table_args__ = {"info": {"tenancy": "global"}}

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    role: Mapped[str] = mapped_column(choice(*ROLES, name="role"), primary_key=True)
    granted_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class PracticeModuleMode(Base):
    """Where writes of a module go for a practice: mirror Animana, write here and push back, or native."""

    __tablename__ = "practice_module_mode"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    module: Mapped[str] = mapped_column(choice(*MODULES, name="module"), primary_key=True)
    mode: Mapped[str] = mapped_column(choice(*MODES, name="integration_mode"), server_default="animana")
    changed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class TenantDataKey(Base):
    """Per-practice data key for field encryption, wrapped (AES-GCM) by the master key; versioned for rotation."""

    __tablename__ = "tenant_data_key"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


Index("ix_membership_tenant", Membership.tenant_id)
Index("ix_user_session_live", UserSession.user_id, postgresql_where=UserSession.revoked_at.is_(None))


class UserInvitation(Base):
    """A one-time link that lets a user an administrator added set their own password. Only the token's SHA-256
    is stored; it expires, and it is used once. Only the system role may read or write it (migration 0490)."""

    __tablename__ = "user_invitation"
    __table_args__ = {"info": {"tenancy": "global"}}

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
