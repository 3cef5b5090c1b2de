"""Sign-in: password, then the authenticator code (or, the first time for managers, the QR enrolment)."""

from __future__ import annotations

import streamlit as st

from dashboard.components.session import TZ
from dashboard.runtime import app_runtime
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


def _settle(outcome: object) -> None:
    if isinstance(outcome, SignedInUser):
        st.session_state.pop("pending_sign_in", None)
        st.session_state["user"] = outcome
        st.rerun()
    if isinstance(outcome, MfaChallenge | MfaEnrolmentRequired):
        st.session_state["pending_sign_in"] = outcome
        st.rerun()
    if isinstance(outcome, Locked):
        st.session_state.pop("pending_sign_in", None)
        st.error(outcome.message(TZ))
    elif isinstance(outcome, Rejected):
        st.error(outcome.reason)


runtime = app_runtime()
st.title("VetConnect")
if reason := st.session_state.pop("signed_out_reason", None):
    st.info(reason)
pending = st.session_state.get("pending_sign_in")

if isinstance(pending, MfaEnrolmentRequired):
    st.subheader("Set up two-step sign-in")
    st.write(
        "Your role requires a second factor. Scan this QR code with an authenticator app "
        "(Google Authenticator, Microsoft Authenticator, 1Password…), then enter the 6-digit code it shows."
    )
    st.image(pending.enrolment.qr_png, width=220)
    st.caption(f"Cannot scan? Enter this key by hand: `{pending.enrolment.secret}`")
    with st.form("enrol"):
        code = st.text_input("6-digit code", max_chars=8)
        submitted = st.form_submit_button("Confirm and sign in", type="primary")
    if submitted:
        _settle(complete_enrolment(runtime.admin_engine, pending, code, master_key=runtime.master_key()))
elif isinstance(pending, MfaChallenge):
    st.subheader("Two-step sign-in")
    with st.form("mfa"):
        code = st.text_input("6-digit code from your authenticator app", max_chars=8)
        submitted = st.form_submit_button("Verify", type="primary")
    if submitted:
        _settle(complete_mfa(runtime.admin_engine, pending, code, master_key=runtime.master_key()))
else:
    with st.form("sign_in"):
        username = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        _settle(begin_sign_in(runtime.admin_engine, username, password))
if pending is not None and st.button("Start again"):
    st.session_state.pop("pending_sign_in", None)
    st.rerun()
