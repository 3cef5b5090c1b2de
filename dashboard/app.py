"""VetConnect web app entry point: the server-side session check, the practice switcher, navigation from
the signed-in user's permissions at the practice chosen in the switcher (the page table lives in
``dashboard/components/pages.py``), the page's address (``dashboard/components/address.py``) and the one place
unexpected errors are caught.

Served by ``streamlit run dashboard/asgi.py`` (this script plus the session-cookie route)."""

from __future__ import annotations

import logging
import secrets

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from dashboard.components.address import open_from_address, write_address
from dashboard.components.forms import apply_pending
from dashboard.components.pages import PAGES, SIGN_IN, pages_for
from dashboard.components.session import (
    ALL_PRACTICES,
    forget_in_browser,
    keep_in_browser,
    permissions,
    roles_here,
    sign_out,
    signed_in_user,
)
from dashboard.runtime import start_warm_up

log = logging.getLogger("vetconnect.app")

st.set_page_config(page_title="VetConnect", page_icon="🐾", layout="wide")
start_warm_up()


def _run(page: st.Page) -> None:
    """Run the page; an unexpected error shows a short message with an id, and the log has the details
    under that id (``client.showErrorDetails = "none"`` hides what would escape this, e.g. in callbacks)."""
    try:
        page.run()
    except Exception:
        error_id = secrets.token_hex(4)
        log.exception("unexpected error %s on page %r", error_id, page.url_path)
        st.error(
            f"Something went wrong and was not saved. Try again; if it happens again, tell support the "
            f"error id **{error_id}**.",
            icon=":material/error:",
        )


user = signed_in_user()

if user is None:
    # Every workspace address leads to the sign-in page (and stays in the address bar), so that a reload or
    # a shared link opens that page — with its record — once signed in.
    sign_in_pages = [st.Page(SIGN_IN.path, title=SIGN_IN.title, icon=SIGN_IN.icon, default=True)]
    sign_in_pages += [st.Page(SIGN_IN.path, title=SIGN_IN.title, url_path=p.key) for p in PAGES]
    navigation = st.navigation(sign_in_pages, position="hidden")
    forget_in_browser()
    if st.session_state.pop("signed_out_here", False) and navigation.url_path:
        # Whoever signs in next at this screen starts at their own hub, not at the last user's record.
        st.query_params.clear()
        st.switch_page(sign_in_pages[0])
    _run(navigation)
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
        st.caption(", ".join(sorted(r.replace("_", " ") for r in roles_here())) or "no role here")
        if st.button("Sign out", icon=":material/logout:"):
            sign_out(end_server_session=True)
            st.session_state["signed_out_here"] = True
            st.rerun()
        keep_in_browser(user)
    sections: dict[str, list] = {}
    for spec in pages_for(permissions()):
        sections.setdefault(spec.section, []).append(
            st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=spec.key == "hub")
        )
    # Every page the user may open is listed: collapsed, the menu hides all but the first ten behind "View more",
    # and a practice manager has more than ten.
    navigation = st.navigation(sections, expanded=True)
    apply_pending()
    open_from_address(navigation.url_path)
    if missing := st.session_state.pop("address.missing", None):
        st.warning(missing)
    try:
        _run(navigation)
    except StopException:  # a page with nothing chosen stops early: its address loses the record
        write_address(navigation.url_path)
        raise
    # Not after st.rerun() or st.switch_page() (they raise past this): the next run writes the address.
    write_address(navigation.url_path)
