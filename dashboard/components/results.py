"""Search results grouped by kind; a click opens the hit in its workspace (or the hub's card)."""

from __future__ import annotations

import streamlit as st

from dashboard.components.pages import page_opening
from warehouse.search import SearchHit, SearchResults

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


def show_results(results: SearchResults, granted: frozenset[str], practice_label: dict[int, str]) -> None:
    if not results.hits:
        st.info(
            f"Nothing found for “{results.query}”. Try part of a name, a phone number, a chip or a postcode."
        )
        return
    multi = len({h.practice_id for h in results.hits}) > 1
    columns = st.columns(len(results.groups))
    for column, (kind, hits) in zip(columns, results.groups, strict=True):
        with column:
            st.markdown(f"**{KIND_TITLES[kind]}** · {len(hits)}")
            for hit in hits:
                where = f" · {practice_label.get(hit.practice_id, '')}" if multi else ""
                if st.button(
                    f"**{hit.title}**  \n{hit.detail}{where}", key=f"hit-{kind}-{hit.practice_id}-{hit.id}",
                    icon=KIND_ICONS[kind], width="stretch",
                ):  # fmt: skip
                    open_hit(hit, granted)
    st.caption(f"{len(results.hits)} results in {results.elapsed_ms:.0f} ms")
