"""Sign-in page."""

from __future__ import annotations

import streamlit as st

from dashboard.runtime import app_runtime
from warehouse.security.signin import authenticate

st.title("VetConnect")
with st.form("sign_in"):
    username = st.text_input("User name")
    password = st.text_input("Password", type="password")
    submitted = st.form_submit_button("Sign in")
if submitted:
    user = authenticate(app_runtime().admin_engine, username, password)
    if user is None:
        st.error("Unknown user name or wrong password.")
    else:
        st.session_state["user"] = user
        st.rerun()
