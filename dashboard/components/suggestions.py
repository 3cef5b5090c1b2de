"""Suggested next actions (from the next-action model) as one-click buttons; whether one was taken is logged,
so the acceptance rate is measurable."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.pages import page_opening
from models.serving import Suggestion, log_suggestion_outcome
from warehouse.kernel import formatting as fmt

# Which workspace carries out each kind of action; the patient in focus stays in focus there.
ACTION_OPENS = {
    "open_booking": "appointment",
    "check_in": "appointment",
    "open_consult": "patient",
    "order_lab": "patient",
    "review_lab_result": "patient",
    "create_invoice": "invoice",
    "take_payment": "invoice",
}


def shown_once(key: str, compute: Callable[[], list[Suggestion]]) -> list[Suggestion]:
    """Compute (and so log as shown) a context's suggestions once per browser session, not on every rerun,
    so the logged acceptance rate is per suggestion shown, not per page refresh."""
    cache = st.session_state.setdefault("suggestions.shown", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def render_suggestions(suggestions: list[Suggestion], key: str) -> None:
    if not suggestions:
        st.caption("No suggestion: the next-action model sees no likely next step here.")
        return
    if suggestions[0].basis == "work_session":
        st.caption("What you will likely do next in your current work session")
    granted = ctx.permissions()
    for suggestion in suggestions:
        target = page_opening(ACTION_OPENS.get(suggestion.action, "patient"), granted)
        label = f"{suggestion.label} · {fmt.percent(suggestion.score, 0)}"
        if st.button(label, key=f"{key}.{suggestion.rank}", disabled=target is None, width="stretch"):
            if suggestion.suggestion_id is not None:
                with ctx.tenant() as session:
                    log_suggestion_outcome(
                        session, suggestion.params["practice_id"], suggestion.suggestion_id, accepted=True
                    )
            st.session_state["suggestion_prefill"] = {"action": suggestion.action, **suggestion.params}
            st.switch_page(target.path)
