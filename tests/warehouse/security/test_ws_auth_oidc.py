"""OIDC identities map to accounts an administrator linked, never to new ones (against PostgreSQL).

The claims here are what ``st.user`` holds after Streamlit verified an ID token at its callback; the full
browser round trip through a real provider is in test_ws_browser.py.
"""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select

from tests.conftest import MASTER_KEY
from warehouse.schema.tenancy import AppUser, OidcIdentity, UserSession
from warehouse.security import signin
from warehouse.security.accounts import AccountError, deactivate_user
from warehouse.security.oidc import (
    FreshSignInNeeded,
    OidcClaims,
    UnknownIdentity,
    link_identity,
    sign_in_with_oidc,
)

ISSUER = "https://login.example-idp.nl"


def claims(subject: str, *, issuer: str = ISSUER, age_s: float = 5, **extra: object) -> OidcClaims:
    now = dt.datetime.now(dt.UTC).timestamp()
    parsed = OidcClaims.from_user_info({"iss": issuer, "sub": subject, "iat": int(now - age_s), **extra})
    assert parsed is not None
    return parsed


def _user_id(db, username: str) -> int:  # noqa: ANN001
    with db.system() as session:
        return session.scalar(select(AppUser.id).where(AppUser.username == username))


def test_claims_come_from_st_user_and_need_issuer_subject_and_issue_time():
    parsed = OidcClaims.from_user_info({"iss": ISSUER, "sub": "abc", "iat": 1_800_000_000,
                                        "email": " Vet@Praktijk.NL ", "email_verified": True, "amr": ["pwd", "mfa"]})  # fmt: skip
    assert parsed.email == "vet@praktijk.nl" and parsed.email_verified and parsed.amr == {"pwd", "mfa"}
    assert OidcClaims.from_user_info({"iss": ISSUER, "iat": 1_800_000_000}) is None  # no subject
    assert OidcClaims.from_user_info({"is_logged_in": True, "email": "x@y.nl"}) is None
    assert not OidcClaims.from_user_info(
        {"iss": ISSUER, "sub": "a", "iat": 1, "email_verified": "true"}
    ).email_verified


def test_an_unlinked_identity_is_refused_by_name_and_nothing_is_provisioned(ws_db):
    outcome = sign_in_with_oidc(
        ws_db.admin_engine, claims("new-person", email="nieuw@praktijk.nl", email_verified=True)
    )
    assert isinstance(outcome, UnknownIdentity)
    assert "nieuw@praktijk.nl is not linked to a VetConnect account" in outcome.reason
    with ws_db.system() as session:
        assert session.scalars(select(OidcIdentity)).all() == []
        assert session.scalars(select(UserSession)).all() == []


def test_a_subject_link_signs_in_once_per_id_token_and_only_while_the_token_is_fresh(ws_db):
    vet = _user_id(ws_db, "vet-a1")
    with ws_db.system(reason="admin links vet-a1 to the practice IdP") as session:
        link_identity(session, user_id=vet, issuer=ISSUER, subject="sub-vet-a1")
    token = claims("sub-vet-a1")
    user = sign_in_with_oidc(ws_db.admin_engine, token, user_agent="Firefox")
    assert isinstance(user, signin.SignedInUser) and user.user_id == vet and user.sign_in_method == "oidc"
    with ws_db.system() as session:
        row = session.get(UserSession, user.session_id)
    assert (row.method, row.user_agent) == ("oidc", "Firefox")
    # The same ID token (Streamlit keeps it in a cookie for 30 days) cannot open a second session…
    assert isinstance(sign_in_with_oidc(ws_db.admin_engine, token), FreshSignInNeeded)
    # …nor can an old one, even if never used; a newly issued one can.
    assert isinstance(
        sign_in_with_oidc(ws_db.admin_engine, claims("sub-vet-a1", age_s=600)), FreshSignInNeeded
    )
    assert isinstance(
        sign_in_with_oidc(ws_db.admin_engine, claims("sub-vet-a1", age_s=1)), signin.SignedInUser
    )
    # The same subject at another issuer is another identity.
    other = sign_in_with_oidc(ws_db.admin_engine, claims("sub-vet-a1", issuer="https://evil.example"))
    assert isinstance(other, UnknownIdentity)


def test_an_email_link_binds_to_the_first_verified_subject(ws_db):
    vet = _user_id(ws_db, "vet-a2")
    with ws_db.system() as session:
        link_identity(session, user_id=vet, issuer=ISSUER, email="Vet.A2@Praktijk.nl")
    unverified = claims("sub-1", email="vet.a2@praktijk.nl", email_verified=False)
    assert isinstance(sign_in_with_oidc(ws_db.admin_engine, unverified), UnknownIdentity)
    verified = claims("sub-1", email="vet.a2@praktijk.nl", email_verified=True)
    assert isinstance(sign_in_with_oidc(ws_db.admin_engine, verified), signin.SignedInUser)
    with ws_db.system() as session:
        assert session.scalar(select(OidcIdentity.subject).where(OidcIdentity.user_id == vet)) == "sub-1"
    # Someone else who later gets that address at the provider (a new subject) does not get the account.
    taken_over = claims("sub-2", email="vet.a2@praktijk.nl", email_verified=True)
    assert isinstance(sign_in_with_oidc(ws_db.admin_engine, taken_over), UnknownIdentity)
    # A deactivated account is refused even with a good identity.
    with ws_db.system() as session:
        deactivate_user(session, vet)
    outcome = sign_in_with_oidc(ws_db.admin_engine, claims("sub-1", age_s=0))
    assert isinstance(outcome, signin.Rejected) and "deactivated" in outcome.reason


def test_a_manager_still_needs_the_second_factor_unless_the_provider_did_mfa(ws_db):
    manager = _user_id(ws_db, "fm-a")
    with ws_db.system() as session:
        link_identity(session, user_id=manager, issuer=ISSUER, subject="sub-fm-a")
    pending = sign_in_with_oidc(ws_db.admin_engine, claims("sub-fm-a", age_s=3))
    assert isinstance(pending, signin.MfaEnrolmentRequired) and pending.method == "oidc"
    code = pyotp.TOTP(pending.enrolment.secret).now()
    user = signin.complete_enrolment(ws_db.admin_engine, pending, code, master_key=MASTER_KEY)
    assert isinstance(user, signin.SignedInUser) and user.sign_in_method == "oidc"
    assert isinstance(sign_in_with_oidc(ws_db.admin_engine, claims("sub-fm-a", age_s=2)), signin.MfaChallenge)
    with_mfa = sign_in_with_oidc(ws_db.admin_engine, claims("sub-fm-a", age_s=1, amr=["pwd", "mfa"]))
    assert isinstance(with_mfa, signin.SignedInUser)


def test_linking_refuses_duplicates_and_links_without_subject_or_email(ws_db):
    vet, other = _user_id(ws_db, "vet-a1"), _user_id(ws_db, "vet-b1")
    with ws_db.system() as session:
        link_identity(session, user_id=vet, issuer=ISSUER, subject="s-1", email="a@b.nl")
        with pytest.raises(AccountError, match="already linked"):
            link_identity(session, user_id=other, issuer=ISSUER, subject="s-1")
        with pytest.raises(AccountError, match="already linked"):
            link_identity(session, user_id=other, issuer=ISSUER, email="A@B.nl")
        with pytest.raises(AccountError, match="subject or by its e-mail"):
            link_identity(session, user_id=other, issuer=ISSUER)
        with pytest.raises(AccountError, match="provider's URL"):
            link_identity(session, user_id=other, issuer="login.example", subject="x")
        # The same subject at another issuer is a different identity, so it may be linked.
        link_identity(session, user_id=other, issuer="https://other-idp.example", subject="s-1")
