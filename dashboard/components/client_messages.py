"""The client card's messages: every reminder and appointment message to the owner, newest first — what it was
about, by which channel, where it is (sent, delivered, bounced…), when, and why it did not arrive."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from warehouse.messaging.queries import client_messages

SPEC: tables.Spec = {
    "queued_at": ("Queued", "date_time"),
    "kind_label": ("Message", "text"),
    "patient": ("Animal", "text"),
    "channel_label": ("Channel", "text"),
    "state_label": ("State", "text"),
    "sent_at": ("Sent", "date_time"),
    "delivered_at": ("Delivered", "date_time"),
    "why": ("Why", "text"),
}


def client_messages_section(practice_id: int, client_id: int) -> None:
    st.subheader("Messages")
    with ctx.tenant() as session:
        shown = client_messages(session, practice_id, client_id)
    if not shown.height:
        st.caption("No reminders or appointment messages to this client yet.")
        return
    tables.show(shown, SPEC, key="card.messages", zone=ctx.zone(practice_id))
    problems = shown.filter(shown["state"].is_in(["bounced", "failed"])).height
    if problems:
        st.caption(
            f"{problems} message(s) did not reach the client: check the address or phone number with them."
        )
