"""My account: password change (with the policy), the authenticator app (two-step sign-in), and the
signed-in sessions (sign out everywhere)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.security import mfa
from warehouse.security.oidc import linked_identities
from warehouse.security.self_service import (
    AccountChangeError,
    account_status,
    change_password,
    confirm_mfa_enrolment,
    disable_mfa,
)
from warehouse.security.sessions import ENDED_MESSAGES, live_sessions, revoke_sessions

user = ctx.user()
zone = ctx.zone()
ctx.breadcrumbs("My account")
st.title("My account")
with ctx.tenant() as session:
    mfa_on, password_changed, last_login = account_status(session, user.user_id)
st.write(f"**{user.full_name}** ({user.username}) · {', '.join(p.name for p in user.practices)}")
st.caption(
    f"Password changed {password_changed.astimezone(zone):%d-%m-%Y}"
    + (f" · last sign-in {last_login.astimezone(zone):%d-%m-%Y %H:%M}" if last_login else "")
)
if flash := st.session_state.pop("account.flash", None):
    st.success(flash)

password_tab, mfa_tab, sessions_tab = st.tabs(["Password", "Two-step sign-in", "Sessions"])
with password_tab, st.form("password"):
    current = st.text_input("Current password", type="password", key="account.current")
    slots = {"current": st.empty()}
    new = st.text_input("New password", type="password", key="account.new",
                        help="At least 12 characters, not your user name, not a common password.")  # fmt: skip
    slots["new"] = st.empty()
    repeat = st.text_input("Repeat the new password", type="password", key="account.repeat")
    slots["repeat"] = st.empty()
    if st.form_submit_button("Change password", type="primary"):
        try:
            with ctx.tenant() as session:
                ended = change_password(session, user.user_id, current=current, new=new, repeat=repeat,
                                        current_session_id=user.session_id)  # fmt: skip
        except AccountChangeError as exc:
            ctx.field_errors({exc.field: str(exc)}, slots)
        else:
            st.session_state["account.flash"] = "Password changed." + (
                f" Signed out {ended} other session{'s' if ended != 1 else ''}." if ended else ""
            )
            st.rerun()

with mfa_tab:
    master_key = app_runtime().master_key()
    if mfa_on:
        st.success("Two-step sign-in is on: you enter a code from your authenticator app at every sign-in.")
        if user.mfa_required:
            st.caption("Your role requires it, so it cannot be switched off.")
        else:
            with st.form("mfa_off"):
                code = st.text_input("Current 6-digit code", key="account.off_code")
                slot = st.empty()
                if st.form_submit_button("Switch off"):
                    try:
                        with ctx.tenant() as session:
                            disable_mfa(session, user.user_id, user.roles, code=code, master_key=master_key)
                    except AccountChangeError as exc:
                        slot.error(str(exc))
                    else:
                        st.session_state["account.flash"] = "Two-step sign-in switched off."
                        st.rerun()
    else:
        enrolment = st.session_state.setdefault("account.enrolment", mfa.new_enrolment(user.username))
        st.write("Scan the QR code with an authenticator app, then enter the code it shows.")
        st.image(enrolment.qr_png, width=200)
        st.caption(f"Or enter this key by hand: `{enrolment.secret}`")
        with st.form("mfa_on"):
            code = st.text_input("6-digit code", key="account.code")
            slot = st.empty()
            if st.form_submit_button("Switch on", type="primary"):
                try:
                    with ctx.tenant() as session:
                        confirm_mfa_enrolment(session, user.user_id, enrolment, code, master_key=master_key)
                except AccountChangeError as exc:
                    slot.error(str(exc))
                else:
                    st.session_state.pop("account.enrolment", None)
                    st.session_state["account.flash"] = "Two-step sign-in is on."
                    st.rerun()

with sessions_tab:
    with ctx.tenant() as session:
        sessions = live_sessions(session, user.user_id)
        identities = linked_identities(session, user.user_id)
    st.dataframe(
        [
            {
                "": "this session" if row.id == user.session_id else "",
                "device": row.user_agent or "unknown",
                "signed in with": row.method,
                "since": row.created_at.astimezone(zone).strftime("%d-%m-%Y %H:%M"),
                "last active": row.last_seen_at.astimezone(zone).strftime("%d-%m-%Y %H:%M"),
            }
            for row in sessions
        ],
        hide_index=True,
    )
    if identities:
        st.caption(
            "You can also sign in as "
            + ", ".join(f"{shown} at {issuer}" for issuer, shown in identities)
            + "."
        )
    st.caption(
        "Lost a phone or used a shared computer? Sign out everywhere ends every session, this one too."
    )
    if st.button("Sign out everywhere", key="account.sign_out_everywhere"):
        with ctx.tenant() as session:
            revoke_sessions(session, user.user_id, reason="signed out everywhere")
        ctx.sign_out(ENDED_MESSAGES["signed out everywhere"])
        st.rerun()
