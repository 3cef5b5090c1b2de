"""The set-password form an invitation link (``?invite=<token>``) opens on the sign-in page, and the link itself
as the users page shows it once."""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from dashboard.components.session import field_errors
from dashboard.runtime import app_runtime
from warehouse.security import invitations
from warehouse.security.passwords import MIN_LENGTH

PARAM = "invite"


def link(token: str) -> str:
    """The address that opens the set-password form, on the server the administrator is using."""
    here = urlsplit(st.context.url or "http://localhost:8501/")
    return f"{here.scheme}://{here.netloc}/?{PARAM}={token}"


def _done(message: str) -> None:
    st.query_params.clear()
    st.session_state["signed_out_reason"] = message
    st.rerun()


def accept_form(token: str) -> None:
    """Ask the invited user for a password (twice) and set it; then back to the sign-in form."""
    runtime = app_runtime()
    try:
        username = invitations.invited_username(runtime.admin_engine, token)
    except invitations.InvitationError as exc:
        st.error(str(exc))
        if st.button("Go to sign-in"):
            _done("")
        return
    st.subheader("Set your password")
    st.write(f"Welcome! Choose the password for your account **{username}**.")
    with st.form("invitation"):
        password = st.text_input("New password", type="password", key="invite.password",
                                 autocomplete="new-password", help=f"At least {MIN_LENGTH} characters; a passphrase of a few unrelated words is best.")  # fmt: skip
        slots: dict[str, object] = {"password": st.empty()}
        repeat = st.text_input("Repeat the password", type="password", key="invite.repeat",
                               autocomplete="new-password")  # fmt: skip
        slots["repeat"] = st.empty()
        slots["token"] = st.empty()
        submitted = st.form_submit_button("Set password", type="primary")
    if submitted:
        try:
            invitations.accept(runtime.admin_engine, token, password=password, repeat=repeat)
        except invitations.InvitationError as exc:
            field_errors({exc.field: str(exc)}, slots)
        else:
            _done(f"Your password is set. Sign in as {username}.")
