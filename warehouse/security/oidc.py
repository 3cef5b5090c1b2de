"""Sign-in through an external OpenID Connect provider (Streamlit's ``st.login``), mapped to existing accounts.

Nothing is provisioned from the provider: an administrator links an account to an identity first
(:func:`link_identity`), by issuer and subject, or — before the person has ever signed in there — by issuer
and e-mail address. At the first sign-in whose ID token says that e-mail is verified, the link is bound to
the token's subject, and from then on only the subject counts (an e-mail address can change hands; a subject
cannot). Roles and practices come only from VetConnect's memberships. An identity nobody linked gets a clear
refusal that names it, so the administrator knows what to link.

The identity arrives in a cookie Streamlit signed at the provider's callback and keeps for 30 days. So that
the cookie cannot open sessions on its own long after the sign-in — after VetConnect's session expired or was
revoked — an ID token opens at most one session, and only within ``ID_TOKEN_MAX_AGE`` of being issued.
Roles that require a second factor still need VetConnect's TOTP unless the token says the provider did
multi-factor authentication (``amr``, RFC 8176).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from warehouse.kernel.tenancy import system_session
from warehouse.schema.tenancy import AppUser, Membership, OidcIdentity
from warehouse.security import mfa
from warehouse.security.accounts import AccountError
from warehouse.security.signin import (
    MFA_REQUIRED_ROLES,
    Locked,
    MfaChallenge,
    MfaEnrolmentRequired,
    Rejected,
    SignedInUser,
    succeed,
)

ID_TOKEN_MAX_AGE = dt.timedelta(minutes=5)
# RFC 8176 authentication method references that mean a second factor was used at the provider.
MULTI_FACTOR_AMR = frozenset({"mfa", "otp", "hwk", "sc"})


@dataclass(frozen=True)
class OidcClaims:
    """The claims of a verified ID token that sign-in uses (Streamlit verified the token at the callback)."""

    issuer: str
    subject: str
    issued_at: dt.datetime
    email: str | None = None
    email_verified: bool = False
    amr: frozenset[str] = frozenset()

    @classmethod
    def from_user_info(cls, user_info: Mapping[str, object]) -> OidcClaims | None:
        """From ``st.user``; None when the identity lacks what an ID token always has (iss, sub, iat)."""
        issuer, subject, issued_at = user_info.get("iss"), user_info.get("sub"), user_info.get("iat")
        if not (isinstance(issuer, str) and isinstance(subject, str) and isinstance(issued_at, int | float)):
            return None
        email = user_info.get("email")
        amr = user_info.get("amr")
        return cls(
            issuer=issuer,
            subject=subject,
            issued_at=dt.datetime.fromtimestamp(issued_at, dt.UTC),
            email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
            email_verified=user_info.get("email_verified") is True,
            amr=frozenset(str(a) for a in amr) if isinstance(amr, list) else frozenset(),
        )

    @property
    def shown_as(self) -> str:
        return self.email or self.subject


@dataclass(frozen=True)
class FreshSignInNeeded:
    """The identity Streamlit holds was already used, or is too old: sign in at the provider again. The page
    shows the provider's button without an error (it is the normal state after signing out)."""


@dataclass(frozen=True)
class UnknownIdentity(Rejected):
    """No account is linked to this identity."""


OidcOutcome = SignedInUser | MfaChallenge | MfaEnrolmentRequired | Locked | Rejected | FreshSignInNeeded


def _find_link(session: Session, claims: OidcClaims) -> OidcIdentity | None:
    link = session.scalar(
        select(OidcIdentity)
        .where(OidcIdentity.issuer == claims.issuer, OidcIdentity.subject == claims.subject)
        .with_for_update()
    )
    if link is None and claims.email and claims.email_verified:
        link = session.scalar(
            select(OidcIdentity)
            .where(
                OidcIdentity.issuer == claims.issuer,
                OidcIdentity.email == claims.email,
                OidcIdentity.subject.is_(None),
            )
            .with_for_update()
        )
        if link is not None:
            link.subject = claims.subject  # bound for good: later sign-ins match on the subject
    return link


def sign_in_with_oidc(
    admin_engine: Engine, claims: OidcClaims, *, now: dt.datetime | None = None, user_agent: str | None = None
) -> OidcOutcome:
    """Map a verified OIDC identity to its linked account and open a session (or ask for the second factor)."""
    now = now or dt.datetime.now(dt.UTC)
    if not dt.timedelta(minutes=-1) <= now - claims.issued_at <= ID_TOKEN_MAX_AGE:
        return FreshSignInNeeded()
    with system_session(admin_engine, reason=f"OIDC sign-in of {claims.issuer} {claims.subject}") as session:
        link = _find_link(session, claims)
        if link is None:
            return UnknownIdentity(
                f"{claims.shown_as} is not linked to a VetConnect account. Ask a practice manager or administrator "
                "to link it; until then, sign in with your user name and password."
            )
        if link.last_id_token_issued_at is not None and claims.issued_at <= link.last_id_token_issued_at:
            return FreshSignInNeeded()
        user = session.get(AppUser, link.user_id, with_for_update=True)
        if user is None or not user.is_active:
            return Rejected("This account has been deactivated.")
        if user.locked_until and user.locked_until > now:
            return Locked(user.locked_until)
        link.last_id_token_issued_at = claims.issued_at
        roles = set(session.scalars(select(Membership.role).where(Membership.user_id == user.id)))
        if roles & MFA_REQUIRED_ROLES and not claims.amr & MULTI_FACTOR_AMR:
            if user.mfa_enabled and user.totp_secret_enc:
                return MfaChallenge(user.id, user.username, now, method="oidc")
            return MfaEnrolmentRequired(
                user.id, user.username, now, mfa.new_enrolment(user.username), method="oidc"
            )
        return succeed(session, user, now, method="oidc", user_agent=user_agent)


def link_identity(
    session: Session,
    *,
    user_id: int,
    issuer: str,
    subject: str | None = None,
    email: str | None = None,
    linked_by: int | None = None,
) -> OidcIdentity:
    """Link an account to an external identity (system session: an administrator's action)."""
    # The issuer exactly as the provider writes it in ``iss`` (some end in "/", some do not).
    issuer, subject = issuer.strip(), (subject or "").strip() or None
    email = (email or "").strip().lower() or None
    if not issuer.startswith(("https://", "http://")):
        raise AccountError(
            "the issuer is the provider's URL, e.g. https://login.microsoftonline.com/<tenant>/v2.0"
        )
    if subject is None and email is None:
        raise AccountError("link by the identity's subject or by its e-mail address")
    if session.get(AppUser, user_id) is None:
        raise AccountError(f"no user with id {user_id}")
    same = [OidcIdentity.subject == subject] if subject else []
    same += [OidcIdentity.email == email] if email else []
    clash = session.scalar(select(OidcIdentity.user_id).where(OidcIdentity.issuer == issuer, or_(*same)))
    if clash is not None:
        raise AccountError(f"that identity is already linked (to user {clash})")
    link = OidcIdentity(user_id=user_id, issuer=issuer, subject=subject, email=email, linked_by=linked_by)
    session.add(link)
    session.flush()
    return link


def linked_identities(session: Session, user_id: int) -> list[tuple[str, str]]:
    """(issuer, subject or e-mail) of a user's links, for the account page."""
    rows = session.execute(
        select(OidcIdentity.issuer, func.coalesce(OidcIdentity.email, OidcIdentity.subject))
        .where(OidcIdentity.user_id == user_id)
        .order_by(OidcIdentity.issuer)
    )
    return [(issuer, shown) for issuer, shown in rows]
