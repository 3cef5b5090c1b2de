"""The client card's "Erase personal data" (PRIVACY_MANAGE): what an erasure does to this client, a reason, an
explicit confirmation, then the erasure (``warehouse.privacy.erasure``). While the client owes money the action
says so — which invoice and how much — instead of offering the button."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.kernel import formatting
from warehouse.privacy.erasure import DEFAULT_REASON, ErasureError, erase_client, erasure_preview
from warehouse.security.permissions import PRIVACY_MANAGE, NotPermitted


def erase_action(practice_id: int, client_id: int) -> None:
    """Draw the action for one client (nothing for a user who may not erase at the practice)."""
    if not ctx.may(PRIVACY_MANAGE):
        return
    key = f"erase.{practice_id}.{client_id}"
    with st.expander("Erase personal data", icon=":material/person_remove:"):
        with ctx.tenant() as session:
            preview = erasure_preview(session, practice_id, client_id, now=ctx.now())
        if preview.refusal:
            st.warning(preview.refusal, icon=":material/block:")
            return
        st.markdown(
            f"Erasing removes **{preview.name}**'s name, address, postcode, city, e-mail, phone and IBAN from "
            "VetConnect everywhere (search, history, messages) and from Animana where the practice still works "
            "with it. It cannot be undone.\n\n"
            f"Kept, under a pseudonym: {preview.animals} animal(s) with {preview.visits} visit(s) and "
            f"{preview.invoices} invoice(s), until **{formatting.date(preview.retention_until)}** (the "
            "franchise's retention period after the last visit, appointment or payment); then they are deleted."
        )
        reason = st.text_input("Reason", value=DEFAULT_REASON, key=f"{key}.reason")
        slots: dict[str, object] = {"reason": st.empty()}
        sure = st.checkbox("I understand that this cannot be undone", key=f"{key}.sure")
        slots["client"] = st.empty()
        if st.button("Erase personal data", type="primary", disabled=not sure, key=f"{key}.go"):
            ctx.field_errors(_erase(practice_id, client_id, reason), slots)


def _erase(practice_id: int, client_id: int, reason: str) -> dict[str, str]:
    """Erase and rerun with the outcome in the card's message; the errors per field when refused."""
    try:
        with ctx.tenant() as session:
            result = erase_client(session, ctx.actor(), practice_id, client_id,
                                  master_key=app_runtime().master_key(), reason=reason, now=ctx.now())  # fmt: skip
    except (ErasureError, UpstreamRefused) as exc:
        return {exc.field: str(exc)}
    except NotPermitted as exc:
        return {"client": str(exc)}
    except UpstreamUnavailable as exc:
        return {"client": f"{exc} Nothing was erased; try again in a moment."}
    st.session_state["card.flash"] = (
        f"Personal data erased: the client is now “Erased client {result.pseudonym}”. Their animals' records are "
        f"kept until {formatting.date(result.retention_until)}."
    )
    st.rerun()
    return {}
