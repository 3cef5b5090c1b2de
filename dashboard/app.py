"""VetConnect web app entry point: the server-side session check, the practice switcher, and navigation from
the signed-in user's permissions at the practice chosen in the switcher (the page table lives in
``dashboard/components/pages.py``)."""

from __future__ import annotations

import streamlit as st

from dashboard.components.pages import SIGN_IN, pages_for
from dashboard.components.session import ALL_PRACTICES, context, permissions, sign_out, signed_in_user
from dashboard.runtime import start_warm_up

st.set_page_config(page_title="VetConnect", page_icon="🐾", layout="wide")
start_warm_up()

user = signed_in_user()

if user is None:
    navigation = st.navigation(
        [st.Page(SIGN_IN.path, title=SIGN_IN.title, icon=SIGN_IN.icon)], position="hidden"
    )
else:
    with st.sidebar:
        # The switcher first: what the navigation offers depends on the practice chosen in it.
        st.markdown(f"**{user.full_name}**")
        if len(user.practices) > 1:
            options: list[object] = [p.id for p in user.practices]
            labels = {p.id: p.name for p in user.practices}
            if user.may_choose_all_practices:
                options.insert(0, ALL_PRACTICES)
                labels[ALL_PRACTICES] = "All practices"
            current = st.session_state.get("practice_choice", options[0])
            st.selectbox(
                "Practice", options, index=options.index(current) if current in options else 0,
                format_func=lambda o: labels[o], key="practice_choice",
            )  # fmt: skip
        elif user.practices:
            st.caption(user.practices[0].name)
        roles_here = set().union(*(user.practice_roles.get(p, frozenset()) for p in context().practice_ids))
        st.caption(", ".join(sorted(r.replace("_", " ") for r in roles_here)) or "no role here")
        if st.button("Sign out", icon=":material/logout:"):
            sign_out(end_server_session=True)
            st.rerun()
    sections: dict[str, list] = {}
    for spec in pages_for(permissions()):
        sections.setdefault(spec.section, []).append(
            st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=spec.key == "hub")
        )
    navigation = st.navigation(sections)

navigation.run()
