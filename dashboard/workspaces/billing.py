"""Billing: invoices from visits with the practice's price list, VAT per line, discounts, issue, payments,
credit notes, the PDF, and the outstanding balance per client."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.billing import invoicing as inv
from warehouse.billing.balances import client_balances
from warehouse.billing.pdf import euros, invoice_pdf
from warehouse.security.permissions import BILLING_READ, BILLING_WRITE, NotPermitted

state = st.session_state
if not ctx.may(BILLING_READ):
    st.error(f"Your role at {ctx.here()} cannot open billing.")
    st.stop()
can_write = ctx.may(BILLING_WRITE)
practice_ids = ctx.context().practice_ids
focus = state.get("focus")
if focus is not None and focus.kind == "invoice" and focus.practice_id in practice_ids:
    state.pop("focus")
    state["bill.practice"], state["bill.invoice"] = focus.practice_id, focus.id
if "bill.goto" in state:
    state["bill.invoice"] = state.pop("bill.goto")
practice_id = ctx.one_practice("bill.practice")
client_filter = state.get("bill.client")
client_id = client_filter[1] if client_filter and client_filter[0] == practice_id else None
ctx.breadcrumbs("Billing", ctx.practice_name(practice_id))
st.title("Billing")
if flash := state.pop("bill.flash", None):
    st.success(flash)


def _money(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).map_elements(euros, return_dtype=pl.String) for c in cols)


def _done(message: str, invoice_id: int | None = None, *keys: str) -> None:
    for key in keys:
        state.pop(key, None)
    if invoice_id is not None:
        state["bill.goto"] = invoice_id  # the selectbox's own key cannot change once it is drawn
    state["bill.flash"] = message
    st.rerun()


with ctx.tenant() as session:
    listed = inv.invoices(session, practice_id, client_id=client_id)
    to_invoice = inv.uninvoiced_visits(session, practice_id)
    balances = client_balances(session).filter(pl.col("practice_id") == practice_id)

invoice_tab, visits_tab, balance_tab = st.tabs(
    ["Invoices", f"To invoice · {to_invoice.height}", "Outstanding"]
)

with visits_tab:
    if to_invoice.is_empty():
        st.caption("Every visit is invoiced.")
    for visit in to_invoice.iter_rows(named=True):
        cols = st.columns([4, 1])
        cols[0].write(f"{visit['started_at'].astimezone(ctx.TZ):%d-%m-%Y %H:%M} · **{visit['patient']}** · "
                      f"{visit['client'] or '—'} · {visit['reason'] or 'Consult'}")  # fmt: skip
        if can_write and cols[1].button("Create invoice", key=f"bill.from_visit.{visit['id']}"):
            try:
                with ctx.tenant() as session:
                    draft = inv.draft_from_visit(
                        session, ctx.actor(), practice_id=practice_id, visit_id=visit["id"]
                    )
                    draft_id = draft.id
            except (inv.BillingError, NotPermitted) as exc:
                st.error(str(exc))
            else:
                _done("Draft invoice created from the visit; check the lines and issue it.", draft_id)

with balance_tab:
    if balances.is_empty():
        st.caption("No client owes anything.")
    else:
        st.metric("Outstanding in total", euros(int(balances["outstanding_cents"].sum())))
        st.dataframe(_money(balances.drop("practice_id"), "invoiced_cents", "paid_cents", "outstanding_cents"),
                     hide_index=True, width="stretch")  # fmt: skip

with invoice_tab:
    if client_id is not None:
        cols = st.columns([4, 1])
        cols[0].caption(f"Invoices of client {client_id}")
        if cols[1].button("Show all", key="bill.all"):
            state.pop("bill.client", None)
            st.rerun()
    if listed.is_empty():
        st.info("No invoices yet. Create one from a visit under “To invoice”.")
        st.stop()
    rows = {r["id"]: r for r in listed.iter_rows(named=True)}
    if state.get("bill.invoice") not in rows:
        state["bill.invoice"] = next(iter(rows))
    invoice_id = st.selectbox("Invoice", list(rows), key="bill.invoice", format_func=lambda i: (
        f"{rows[i]['number']} · {rows[i]['client']} · {euros(rows[i]['total_incl_cents'])} · {rows[i]['status']}"))  # fmt: skip
    with ctx.tenant() as session:
        view = inv.invoice_view(session, practice_id, invoice_id)
        prices = inv.price_list(session, practice_id) if view and view.is_draft else []
    if view is None:
        st.stop()
    kind = "Credit note" if view.credit_of else "Invoice"
    st.subheader(f"{kind} {view.number} · {view.client} · {view.status}")
    facts = [f"issued {view.issued_on:%d-%m-%Y}" if not view.is_draft else "draft, not numbered yet",
             f"due {view.due_on:%d-%m-%Y}" if view.due_on and not view.credit_of else None,
             f"credits {view.credit_of}" if view.credit_of else None,
             f"credited by {view.credited_by}" if view.credited_by else None]  # fmt: skip
    st.caption(" · ".join(f for f in facts if f))
    if view.lines.height:
        lines = _money(view.lines, "unit_price_cents", "discount_cents", "line_excl_cents", "line_vat_cents",
                       "line_incl_cents").with_columns((pl.col("vat_rate_bp") / 100).alias("vat %"))  # fmt: skip
        st.dataframe(lines.select("description", "quantity", "unit_price_cents", "discount_cents", "vat %",
                                  "line_excl_cents", "line_vat_cents", "line_incl_cents"),
                     hide_index=True, width="stretch")  # fmt: skip
    totals = st.columns(4)
    totals[0].metric("Excl. VAT", euros(view.total_excl_cents))
    totals[1].metric("VAT", euros(view.vat_cents))
    totals[2].metric("Total", euros(view.total_incl_cents))
    totals[3].metric("Open", euros(view.open_cents))
    st.caption(" · ".join(f"VAT {rate / 100:g}% over {euros(view.excl_by_rate[rate])}: {euros(cents)}"
                          for rate, cents in sorted(view.vat_by_rate.items(), reverse=True)))  # fmt: skip
    if view.payments.height:
        st.dataframe(_money(view.payments.drop("id"), "amount_cents").with_columns(
            pl.col("paid_at").dt.convert_time_zone(str(ctx.TZ)).dt.strftime("%d-%m-%Y %H:%M")), hide_index=True)  # fmt: skip
    with ctx.tenant() as session:
        pdf = invoice_pdf(session, practice_id, invoice_id, master_key=app_runtime().master_key())
    st.download_button("Download PDF", pdf, file_name=f"{view.number}.pdf", mime="application/pdf",
                       key="bill.pdf", icon=":material/picture_as_pdf:")  # fmt: skip

    if not can_write:
        st.stop()
    today = ctx.now().astimezone(ctx.TZ).date()
    errors: dict[str, str] = {}
    if view.is_draft:
        price_by_id = {p.product_id: p for p in prices}
        with st.form("bill.line_form"):
            st.markdown("**Add a line**")
            cols = st.columns([3, 1, 1])
            product_id = cols[0].selectbox("Item", list(price_by_id), index=None, key="bill.l.product",
                                           format_func=lambda i: f"{price_by_id[i].name} · {euros(price_by_id[i].price_cents)}"
                                           f" · {price_by_id[i].vat_rate_bp / 100:g}% VAT")  # fmt: skip
            product_slot = cols[0].empty()
            quantity = cols[1].text_input("Quantity", value="1", key="bill.l.quantity")
            quantity_slot = cols[1].empty()
            discount = cols[2].text_input("Discount %", key="bill.l.discount")
            discount_slot = cols[2].empty()
            add = st.form_submit_button("Add line")
        if add:
            try:
                with ctx.tenant() as session:
                    inv.add_line(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                 product_id=product_id, quantity=quantity, discount_percent=discount)  # fmt: skip
            except inv.BillingError as exc:
                errors[exc.field] = str(exc)
            else:
                _done("Line added.", invoice_id, "bill.l.product", "bill.l.discount")
        ctx.field_errors(
            errors, {"product": product_slot, "quantity": quantity_slot, "discount": discount_slot}
        )
        actions = st.columns(3)
        if view.lines.height:
            line_ids = {r["id"]: r["description"] for r in view.lines.iter_rows(named=True)}
            remove = actions[1].selectbox("Line", list(line_ids), format_func=line_ids.get, key="bill.remove_line",
                                          label_visibility="collapsed")  # fmt: skip
            if actions[2].button("Remove line", key="bill.remove"):
                with ctx.tenant() as session:
                    inv.remove_line(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                    line_id=remove)  # fmt: skip
                _done("Line removed.", invoice_id)
        if actions[0].button("Issue invoice", type="primary", key="bill.issue"):
            try:
                with ctx.tenant() as session:
                    issued = inv.issue(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                       issued_on=today)  # fmt: skip
                    number = issued.number
            except inv.BillingError as exc:
                st.error(str(exc))
            else:
                _done(f"Invoice {number} issued.", invoice_id)
    elif view.status == "issued" and view.open_cents > 0:
        with st.form("bill.pay_form"):
            st.markdown("**Take a payment**")
            cols = st.columns([1, 1, 2])
            method = cols[0].selectbox("Method", ["pin", "cash", "transfer"], key="bill.p.method",
                                       format_func={"pin": "Pin (card)", "cash": "Cash", "transfer": "Bank transfer"}.get)  # fmt: skip
            method_slot = cols[0].empty()
            amount = cols[1].text_input("Amount (€)", value=f"{view.open_cents / 100:.2f}".replace(".", ","),
                                        key=f"bill.p.amount.{invoice_id}")  # fmt: skip
            amount_slot = cols[1].empty()
            pay = st.form_submit_button("Record payment", type="primary")
        if pay:
            try:
                with ctx.tenant() as session:
                    inv.record_payment(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                       method=method, amount_cents=inv.parse_amount(amount))  # fmt: skip
            except inv.BillingError as exc:
                errors[exc.field] = str(exc)
            else:
                _done(f"Payment of € {amount} recorded.", invoice_id, f"bill.p.amount.{invoice_id}")
        ctx.field_errors(errors, {"method": method_slot, "amount": amount_slot})
    if view.status in ("issued", "paid") and not view.credit_of:
        with st.expander("Credit this invoice"):
            confirm = st.checkbox(
                f"Yes, credit the whole of {view.number}", key=f"bill.credit_ok.{invoice_id}"
            )
            if st.button("Create credit note", key="bill.credit", disabled=not confirm):
                with ctx.tenant() as session:
                    note = inv.credit(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                      issued_on=today)  # fmt: skip
                    note_id, note_number = note.id, note.number
                _done(f"Credit note {note_number} issued.", note_id)
