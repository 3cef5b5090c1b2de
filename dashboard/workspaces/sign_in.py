"""Sign-in: password, then the authenticator code (or, the first time for managers, the QR enrolment); or,
when an identity provider is configured, "Sign in with <provider>" (``st.login``) for linked accounts."""

from __future__ import annotations

import streamlit as st

from dashboard.components import invitation
from dashboard.components.session import field_errors, oidc_provider, user_agent
from dashboard.runtime import app_runtime
from warehouse.kernel.formatting import DEFAULT_TZ
from warehouse.security.oidc import FreshSignInNeeded, OidcClaims, sign_in_with_oidc
from warehouse.security.signin import (
    Locked,
    MfaChallenge,
    MfaEnrolmentRequired,
    Rejected,
    SignedInUser,
    begin_sign_in,
    complete_enrolment,
    complete_mfa,
)

CODE_HELP = "The 6 digits your authenticator app shows now."


def _settle(outcome: object, slots: dict[str, object] | None = None) -> None:
    if isinstance(outcome, SignedInUser):
        st.session_state.pop("pending_sign_in", None)
        st.session_state["user"] = outcome
        st.rerun()
    if isinstance(outcome, MfaChallenge | MfaEnrolmentRequired):
        st.session_state["pending_sign_in"] = outcome
        st.rerun()
    if isinstance(outcome, Locked):
        st.session_state.pop("pending_sign_in", None)
        st.error(outcome.message(DEFAULT_TZ))  # no practice yet: a lock-out is the account's
    elif isinstance(outcome, Rejected):
        field_errors({"form": outcome.reason}, slots or {})


def _code_form(form_key: str, label: str, button: str) -> tuple[str, dict[str, object]] | None:
    """A 6-digit code field; returns (code, slots) when submitted with something that can be a code."""
    with st.form(form_key):
        code = st.text_input(label, max_chars=8, key=f"sign_in.{form_key}.code", help=CODE_HELP)
        slots: dict[str, object] = {"form": st.empty()}
        submitted = st.form_submit_button(button, type="primary")
    if not submitted:
        return None
    if len("".join(ch for ch in code if ch.isdigit())) != 6:
        field_errors({"form": "Enter the 6 digits from your authenticator app."}, slots)
        return None
    return code, slots


def _oidc_sign_in(provider_label: str) -> None:
    """Use the identity Streamlit holds from the provider, once per identity token and browser session."""
    claims = OidcClaims.from_user_info(st.user.to_dict())
    if claims is None:
        st.error(f"{provider_label} did not say who you are (no subject in the ID token); use your password.")
        return
    if st.session_state.get("oidc_seen") == claims.issued_at:
        return
    st.session_state["oidc_seen"] = claims.issued_at
    outcome = sign_in_with_oidc(runtime.admin_engine, claims, user_agent=user_agent())
    if not isinstance(outcome, FreshSignInNeeded):
        _settle(outcome)


runtime = app_runtime()
st.title("VetConnect")
if reason := st.session_state.pop("signed_out_reason", None):
    st.info(reason)
pending = st.session_state.get("pending_sign_in")
provider = oidc_provider()
if invite_token := st.query_params.get(invitation.PARAM):
    invitation.accept_form(invite_token)
    st.stop()

if isinstance(pending, MfaEnrolmentRequired):
    st.subheader("Set up two-step sign-in")
    st.write(
        "Your role requires a second factor. Scan this QR code with an authenticator app "
        "(Google Authenticator, Microsoft Authenticator, 1Password…), then enter the 6-digit code it shows."
    )
    st.image(pending.enrolment.qr_png, width=220)
    st.caption(f"Cannot scan? Enter this key by hand: `{pending.enrolment.secret}`")
    if entered := _code_form("enrol", "6-digit code", "Confirm and sign in"):
        code, slots = entered
        _settle(complete_enrolment(runtime.admin_engine, pending, code, master_key=runtime.master_key(),
                                   user_agent=user_agent()), slots)  # fmt: skip
elif isinstance(pending, MfaChallenge):
    st.subheader("Two-step sign-in")
    if entered := _code_form("mfa", "6-digit code from your authenticator app", "Verify"):
        code, slots = entered
        _settle(complete_mfa(runtime.admin_engine, pending, code, master_key=runtime.master_key(),
                             user_agent=user_agent()), slots)  # fmt: skip
else:
    if provider is not None and st.user.is_logged_in:
        _oidc_sign_in(provider.label)
    with st.form("sign_in"):
        username = st.text_input("User name", key="sign_in.username", autocomplete="username")
        slots: dict[str, object] = {"username": st.empty()}
        password = st.text_input("Password", type="password", key="sign_in.password",
                                 autocomplete="current-password")  # fmt: skip
        slots["password"] = st.empty()
        slots["form"] = st.empty()
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        missing = {field: f"Enter your {label}." for field, label, value in
                   (("username", "user name", username), ("password", "password", password)) if not value.strip()}  # fmt: skip
        if missing:
            field_errors(missing, slots)
        else:
            _settle(begin_sign_in(runtime.admin_engine, username, password, user_agent=user_agent()), slots)
    if provider is not None:
        st.divider()
        st.button(f"Sign in with {provider.label}", on_click=st.login, args=(provider.name,),
                  icon=":material/login:")  # fmt: skip
if pending is not None and st.button("Start again"):
    st.session_state.pop("pending_sign_in", None)
    st.rerun()
