"""VetConnect web app entry point: navigation is built from the signed-in user's roles."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="VetConnect", page_icon="🐾", layout="wide")

user = st.session_state.get("user")
if user is None:
    pages = [st.Page("workspaces/sign_in.py", title="Sign in", icon="🔑")]
else:
    pages = [st.Page("workspaces/hub.py", title="Hub", icon="🏠", default=True)]
    with st.sidebar:
        st.write(f"**{user.full_name}**")
        st.caption(", ".join(sorted(user.roles)))
        if st.button("Sign out"):
            del st.session_state["user"]
            st.rerun()

st.navigation(pages).run()
