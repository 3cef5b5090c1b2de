"""The client card's contact edit: address, phone, e-mail and preferred channel, errors at their fields (the
consents have their own section, ``dashboard.components.consent``).

The form's widgets carry a version in their keys: after a save the version moves on, so the form starts again
from the stored (normalised) values — a typed ``06 8765 4321`` comes back as ``+31687654321``."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.clients.errors import ClientsError, InvalidClientDetails
from warehouse.clients.registration import CHANNEL_LABELS, Contact, current_contact, edit_contact
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable

FIELD_LABELS = {"street": "Street", "house_number": "House number", "postcode": "Postcode", "city": "City",
                "phone": "Phone", "email": "E-mail"}  # fmt: skip
LABELS = {**FIELD_LABELS, "preferred_channel": "Preferred channel"}


def edit_contact_form(practice_id: int, client_id: int) -> None:
    state = st.session_state
    version = state.get(f"card.edit_version.{client_id}", 0)
    key = f"card.edit.{client_id}.{version}"
    with ctx.tenant() as session:
        current = current_contact(session, practice_id, client_id, master_key=app_runtime().master_key())
    errors: dict[str, str] = {}
    with st.expander("Edit contact details"), st.form(key, border=False):
        slots: dict[str, object] = {"": st.empty()}
        values: dict[str, str] = {}
        for name, label in FIELD_LABELS.items():
            values[name] = st.text_input(label, value=getattr(current, name), key=f"{key}.{name}")
            slots[name] = st.empty()
        channels = list(CHANNEL_LABELS)
        channel = st.selectbox(
            "Preferred channel", channels, format_func=CHANNEL_LABELS.get, placeholder="Not asked",
            index=channels.index(current.preferred_channel) if current.preferred_channel else None,
            key=f"{key}.preferred_channel",
        )  # fmt: skip
        slots["preferred_channel"] = st.empty()
        if st.form_submit_button("Save contact details", type="primary"):
            contact = Contact(**values, preferred_channel=channel)
            try:
                with ctx.tenant() as session:
                    changed = edit_contact(session, ctx.actor(), practice_id=practice_id, client_id=client_id,
                                           contact=contact, master_key=app_runtime().master_key())  # fmt: skip
            except InvalidClientDetails as exc:
                errors = exc.errors
            except (ClientsError, UpstreamRefused) as exc:  # Animana's relation fields carry these names too
                errors = {exc.field if exc.field in slots else "": str(exc)}
            except UpstreamUnavailable as exc:
                errors = {"": f"{exc} Nothing was saved; try again in a moment."}
            else:
                state[f"card.edit_version.{client_id}"] = version + 1
                names = ", ".join(LABELS.get(c, c).lower() for c in changed)
                state["card.flash"] = f"Saved: {names}." if changed else "Nothing changed."
                st.rerun()
        ctx.field_errors(errors, slots)
