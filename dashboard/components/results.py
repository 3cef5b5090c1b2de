"""Search results grouped by kind; a click opens the hit in its workspace (or the hub's card)."""

from __future__ import annotations

import streamlit as st

from dashboard.components.pages import page_opening
from warehouse.search.service import SearchHit, SearchResults

KIND_TITLES = {
    "client": "Clients",
    "patient": "Patients",
    "appointment": "Appointments",
    "invoice": "Invoices",
}
KIND_ICONS = {
    "client": ":material/person:", "patient": ":material/pets:", "appointment": ":material/event:",
    "invoice": ":material/receipt_long:",
}  # fmt: skip


def open_hit(hit: SearchHit, granted: frozenset[str]) -> None:
    """Put what the target workspace needs into session state and switch to it."""
    st.session_state["focus"] = hit
    target = page_opening(hit.kind, granted)
    if target is None:
        st.session_state["focus_unavailable"] = hit.kind
        return
    if target.key == "hub":
        st.rerun()
    st.switch_page(target.path)


PAGE = 8  # hits of each kind shown at first, and added by each "show more"


def page_sizes(key: str, query: str) -> dict[str, int]:
    """How many hits of each kind the user asked to see for ``query`` (``PAGE`` each until they ask for more;
    a new query starts again)."""
    asked = st.session_state.get(key)
    if asked is None or asked[0] != query:
        asked = st.session_state[key] = (query, {})
    return {kind: asked[1].get(kind, PAGE) for kind in KIND_TITLES}


def _show_more(key: str, kind: str) -> None:
    query, sizes = st.session_state[key]
    st.session_state[key] = (query, {**sizes, kind: sizes.get(kind, PAGE) + PAGE})


def show_results(
    results: SearchResults, granted: frozenset[str], practice_label: dict[int, str], *, more_key: str
) -> None:
    """The hits by kind; each names its practice when the user works at more than one (``practice_label``
    holds the user's practices), and a kind with further hits offers "show more" (``more_key``: the session
    state ``page_sizes`` keeps)."""
    if not results.hits:
        st.info(
            f"Nothing found for “{results.query}”. Try part of a name, a phone number, a chip or a postcode."
        )
        return
    multi = len(practice_label) > 1
    columns = st.columns(len(results.groups))
    for column, (kind, hits) in zip(columns, results.groups, strict=True):
        with column:
            more = kind in results.more
            st.markdown(f"**{KIND_TITLES[kind]}** · {'first ' if more else ''}{len(hits)}")
            for hit in hits:
                where = (
                    f"  \n:material/location_on: {practice_label.get(hit.practice_id, '')}" if multi else ""
                )
                if st.button(
                    f"**{hit.title}**  \n{hit.detail}{where}", key=f"hit-{kind}-{hit.practice_id}-{hit.id}",
                    icon=KIND_ICONS[kind], width="stretch",
                ):  # fmt: skip
                    open_hit(hit, granted)
            if more:
                st.button(f"Show more {KIND_TITLES[kind].lower()}", key=f"more-{kind}", icon=":material/expand_more:",
                          on_click=_show_more, args=(more_key, kind), type="tertiary")  # fmt: skip
    shown = f"{len(results.hits)} results{' (more available)' if results.more else ''}"
    st.caption(f"{shown} in {results.elapsed_ms:.0f} ms")
