"""The client card's "Export personal data" (PRIVACY_MANAGE): everything the practice holds about the client, as
JSON and as a readable PDF to hand over. Made on request (each export is audited), kept for the download buttons
until another client is opened."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.privacy.export import export_client, to_json
from warehouse.privacy.export_pdf import to_pdf
from warehouse.security.permissions import PRIVACY_MANAGE


def export_personal_data(practice_id: int, client_id: int) -> None:
    if not ctx.may(PRIVACY_MANAGE):
        return
    key = f"card.export.{practice_id}.{client_id}"
    if st.button("Export personal data", key=f"{key}.make", icon=":material/download:"):
        with ctx.tenant() as session:
            export = export_client(session, practice_id, client_id, app_runtime().master_key())
        st.session_state[key] = (to_json(export), to_pdf(export, tz=ctx.zone(practice_id)))
    files = st.session_state.get(key)
    if files is None:
        return
    st.caption("The export is recorded in the audit log. Hand it to the client only.")
    left, right = st.columns(2)
    left.download_button("Download JSON", files[0], file_name=f"client-{client_id}.json", mime="application/json",
                         key=f"{key}.json")  # fmt: skip
    right.download_button("Download PDF", files[1], file_name=f"client-{client_id}.pdf", mime="application/pdf",
                          key=f"{key}.pdf")  # fmt: skip
