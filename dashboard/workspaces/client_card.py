"""Client card: contact details (decrypted), consents per purpose, the client's animals, the messages sent to them
(and why one did not arrive), balance and invoices; with CLIENTS_WRITE, the contact details and consents can be
edited here (errors at their fields) and an animal can be marked deceased (front desk takes that call; the patient
record is not theirs to open)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from dashboard.components.client_messages import client_messages_section
from dashboard.components.consent import consent_section
from dashboard.components.contact_edit import edit_contact_form
from dashboard.components.deceased import deceased_action
from dashboard.components.erasure import erase_action
from dashboard.components.pages import page
from dashboard.components.privacy_export import export_personal_data
from dashboard.components.writeback import badge, markers
from dashboard.runtime import app_runtime
from warehouse.billing import invoice_views
from warehouse.clients.card import client_card
from warehouse.clients.registration import CHANNEL_LABELS
from warehouse.records.patient_record import born_text
from warehouse.search.service import search
from warehouse.security.permissions import BILLING_READ, CLIENTS_READ, CLIENTS_WRITE, RECORDS_READ

state = st.session_state
if not ctx.may(CLIENTS_READ):
    st.error(f"Your role at {ctx.here()} cannot open client cards.")
    st.stop()
practice_ids = ctx.context().practice_ids
focus = state.get("focus")
if focus is not None and focus.kind == "client" and focus.practice_id in practice_ids:
    state.pop("focus")
    state["card.client"] = (focus.practice_id, focus.id)

query = st.text_input("Find client", key="card.query", placeholder="Name, phone, e-mail or postcode",
                      icon=":material/search:")  # fmt: skip
if query.strip():
    with ctx.tenant() as session:
        hits = search(session, query, master_key=app_runtime().master_key(), now=ctx.now()).group("client")
    if not hits:
        st.info(f"No client found for “{query}”.")
    for hit in hits[:8]:
        if st.button(f"**{hit.title}** · {hit.detail}", key=f"card.hit.{hit.practice_id}.{hit.id}",
                     icon=":material/person:"):  # fmt: skip
            state["card.client"] = (hit.practice_id, hit.id)
            state.pop("card.query", None)
            st.rerun()

chosen = state.get("card.client")
if chosen is None or chosen[0] not in practice_ids:
    ctx.breadcrumbs("Client card")
    st.title("Client card")
    st.info("Search for a client, or open one from the hub's search or a patient record.")
    st.stop()
practice_id, client_id = chosen
with ctx.tenant() as session:
    card = client_card(session, practice_id, client_id, master_key=app_runtime().master_key())
    client_invoices = invoice_views.invoices(session, practice_id, client_id=client_id, limit=20)
    animals = [("patient", i) for i in card.patients["id"]] if card is not None else []
    marked = markers(session, practice_id, [("client", client_id), *animals])
if card is None:
    st.warning("This client is not available.")
    st.stop()

ctx.breadcrumbs("Client card", ctx.practice_name(practice_id), card.name)
st.title(card.name + ("" if card.active else " (inactive)"))
badge(marked.get(("client", client_id)))
if flash := state.pop("card.flash", None):
    st.success(flash)
left, right = st.columns([3, 2])
with left, st.container(border=True):
    st.markdown("**Contact**")
    # The app's own icon font, not emoji: a browser without an emoji font drew empty boxes for these.
    st.markdown(f":material/mail: {card.email or '—'}  \n:material/call: {card.phone or '—'}")
    st.write(
        ", ".join(p for p in (card.address, " ".join(x for x in (card.postcode, card.city) if x)) if p)
        or "No address"
    )
    if card.preferred_channel:
        st.write(f"Prefers: {CHANNEL_LABELS[card.preferred_channel]}")
    if ctx.may(CLIENTS_WRITE):
        edit_contact_form(practice_id, client_id)
    consent_section(practice_id, client_id)
    erase_action(practice_id, client_id)  # PRIVACY_MANAGE only (issue 17)
with right:
    balance = card.balance
    st.metric(
        "Outstanding",
        f"€ {balance.outstanding_cents / 100:,.2f}".replace(",", "X").replace(".", ",").replace("X", "."),
    )
    st.caption(
        f"Invoiced € {balance.invoiced_cents / 100:.2f} · paid € {balance.paid_cents / 100:.2f}".replace(
            ".", ","
        )
    )
    export_personal_data(practice_id, client_id)

st.subheader(f"Animals · {card.patients.height}")
today = ctx.now().astimezone(ctx.zone(practice_id)).date()
for animal in card.patients.iter_rows(named=True):
    cols = st.columns([4, 1])
    facts = (animal["species"], animal["breed"], born_text(animal["date_of_birth"], animal["date_of_birth_estimated"]),
             "deceased" if animal["deceased"] else None)  # fmt: skip
    cols[0].write(" · ".join([f"**{animal['name']}**", *(f for f in facts if f)]))
    with cols[0]:
        badge(marked.get(("patient", animal["id"])))
        deceased_action(practice_id, animal["id"], deceased=animal["deceased"], today=today)
    if ctx.may(RECORDS_READ) and cols[1].button("Open record", key=f"card.open.{animal['id']}"):
        state["rec.practice"], state["rec.patient"] = practice_id, animal["id"]
        st.switch_page(page("records").path)

client_messages_section(practice_id, client_id)

if ctx.may(BILLING_READ):
    st.subheader("Invoices")
    if client_invoices.height:
        tables.show(client_invoices, {"number": ("Number", "text"), "status": ("Status", "status"),
                                      "issued_on": ("Date", "date"), "total_incl_cents": ("Total", "cents"),
                                      "paid_cents": ("Paid", "cents"), "open_cents": ("Open", "cents")})  # fmt: skip
        if st.button("Open in billing", key="card.billing"):
            state["bill.client"] = (practice_id, client_id)
            st.switch_page(page("billing").path)
    else:
        st.caption("No invoices.")
