"""Billing: invoices from visits with the practice's price list, VAT per line, discounts, issue, payments,
credit notes, the PDF, and the outstanding balance per client."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from dashboard.runtime import app_runtime
from warehouse.billing import invoice_lines, invoice_views, issuing, numbering, payments
from warehouse.billing.balances import client_balances
from warehouse.billing.drafts import draft_from_visit
from warehouse.billing.invoices import BillingError, parse_amount, price_list
from warehouse.billing.pdf import invoice_pdf
from warehouse.kernel import formatting as fmt
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
zone = ctx.zone(practice_id)
client_filter = state.get("bill.client")
client_id = client_filter[1] if client_filter and client_filter[0] == practice_id else None
ctx.breadcrumbs("Billing", ctx.practice_name(practice_id))
st.title("Billing")
flash = state.pop("bill.flash", None)


euros = fmt.euros
TABS = ("Invoices", "To invoice", "Outstanding")


def _money(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).map_elements(euros, return_dtype=pl.String) for c in cols)


def _quantity(value: float) -> str:
    return fmt.number(value, 0 if value == int(value) else 3).rstrip("0").rstrip(",")


def _done(message: str, invoice_id: int | None = None, empty: dict[str, object] | None = None) -> None:
    """After a save: empty the form's fields (as the browser sees them), show the saved invoice in the Invoices
    tab with the message."""
    empty_next_run(empty or {})
    if invoice_id is not None:
        state["bill.goto"] = invoice_id  # the selectbox's own key cannot change once it is drawn
        state["bill.tab.goto"] = TABS[0]  # applied before the tabs are drawn again (see below)
    state["bill.flash"] = message
    st.rerun()


with ctx.tenant() as session:
    listed = invoice_views.invoices(session, practice_id, client_id=client_id)
    to_invoice = invoice_views.uninvoiced_visits(session, practice_id)
    balances = client_balances(session).filter(pl.col("practice_id") == practice_id)

# Keyed tabs remember the open tab over reruns (a save stays where it happened); stable labels, so the key's
# value (the label) survives a count that changes; only the open tab's content runs.
if "bill.tab.goto" in state:
    state["bill.tab"] = state.pop("bill.tab.goto")
invoice_tab, visits_tab, balance_tab = st.tabs(TABS, key="bill.tab", on_change="rerun")
if flash:
    st.success(flash)

with visits_tab:
    st.caption(f"{to_invoice.height} visits without an invoice")
    if to_invoice.is_empty():
        st.caption("Every visit is invoiced.")
    for visit in to_invoice.iter_rows(named=True):
        cols = st.columns([4, 1])
        cols[0].write(f"{visit['started_at'].astimezone(zone):%d-%m-%Y %H:%M} · **{visit['patient']}** · "
                      f"{visit['client'] or '—'} · {visit['reason'] or 'Consult'}")  # fmt: skip
        if can_write and cols[1].button("Create invoice", key=f"bill.from_visit.{visit['id']}"):
            try:
                with ctx.tenant() as session:
                    draft = draft_from_visit(
                        session, ctx.actor(), practice_id=practice_id, visit_id=visit["id"]
                    )
                    draft_id = draft.id
            except (BillingError, NotPermitted) as exc:
                st.error(str(exc))
            else:
                _done("Draft invoice created from the visit; check the lines and issue it.", draft_id)

with balance_tab:
    if balances.is_empty():
        st.caption("No client owes anything.")
    else:
        st.metric("Outstanding in total", euros(int(balances["outstanding_cents"].sum())))
        shown = _money(
            balances.drop("practice_id", "client_id"), "invoiced_cents", "paid_cents", "outstanding_cents"
        )
        st.dataframe(shown.rename({"last_name": "Client", "invoiced_cents": "Invoiced", "paid_cents": "Paid",
                                   "outstanding_cents": "Outstanding"}), hide_index=True, width="stretch")  # fmt: skip

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
        view = invoice_views.invoice_view(session, practice_id, invoice_id)
        prices = price_list(session, practice_id) if view and view.is_draft else []
    if view is None:
        st.stop()
    kind = "Credit note" if view.credit_of else "Invoice"
    st.subheader(f"{kind} {view.number} · {view.client} · {view.status}")
    facts = [f"issued {fmt.date(view.issued_on)}" if not view.is_draft else "draft, not numbered yet",
             f"due {fmt.date(view.due_on)}" if view.due_on and not view.credit_of else None,
             f"credits {view.credit_of}" if view.credit_of else None,
             f"credited by {view.credited_by}" if view.credited_by else None]  # fmt: skip
    st.caption(" · ".join(f for f in facts if f))
    if view.patient:
        st.caption(f"Patient: {view.patient}")
    if view.lines.height:
        lines = _money(view.lines, "unit_price_cents", "discount_cents", "line_excl_cents", "line_vat_cents",
                       "line_incl_cents").with_columns(
            pl.col("quantity").map_elements(_quantity, return_dtype=pl.String),
            (pl.col("vat_rate_bp") / 10_000).map_elements(lambda f: fmt.percent(f, 0), return_dtype=pl.String),
            pl.when(pl.col("needs_price")).then(pl.lit("needs a price")).otherwise(pl.lit("")).alias("note"),
        )  # fmt: skip
        st.dataframe(lines.select(pl.col("description").alias("Item"), pl.col("quantity").alias("Quantity"),
                                  pl.col("unit_price_cents").alias("Unit price"),
                                  pl.col("discount_cents").alias("Discount"), pl.col("vat_rate_bp").alias("VAT"),
                                  pl.col("line_excl_cents").alias("Excl. VAT"),
                                  pl.col("line_vat_cents").alias("VAT amount"),
                                  pl.col("line_incl_cents").alias("Total"), pl.col("note").alias("Note")),
                     hide_index=True, width="stretch", key="bill.lines")  # fmt: skip
        if unpriced := view.lines.filter(pl.col("needs_price"))["description"].to_list():
            st.warning(f"Needs a price before issuing: {', '.join(unpriced)}.")
    if view.removals.height:
        st.markdown("**Removed from this invoice**")
        st.dataframe(view.removals.select(
            pl.col("description").alias("Item"),
            pl.col("quantity").map_elements(_quantity, return_dtype=pl.String).alias("Quantity"),
            pl.col("unit_price_cents").map_elements(euros, return_dtype=pl.String).alias("Unit price"),
            pl.col("reason").alias("Reason"), pl.col("removed_by").fill_null("–").alias("Removed by"),
            pl.col("removed_at").map_elements(lambda t: fmt.date_time(t), return_dtype=pl.String).alias("Removed at"),
        ), hide_index=True, width="stretch", key="bill.removals")  # fmt: skip
    totals = st.columns(4)
    totals[0].metric("Excl. VAT", euros(view.total_excl_cents))
    totals[1].metric("VAT", euros(view.vat_cents))
    totals[2].metric("Total", euros(view.total_incl_cents))
    totals[3].metric("Open", euros(view.open_cents))
    st.caption(" · ".join(f"VAT {fmt.percent(rate / 10_000, 0)} over {euros(view.excl_by_rate[rate])}: {euros(cents)}"
                          for rate, cents in sorted(view.vat_by_rate.items(), reverse=True)))  # fmt: skip
    if view.payments.height:
        methods = {"pin": "Pin (card)", "cash": "Cash", "transfer": "Bank transfer", "other": "Other"}
        st.dataframe(view.payments.select(
            pl.col("paid_at").map_elements(lambda t: fmt.date_time(t), return_dtype=pl.String).alias("Paid at"),
            pl.col("method").replace_strict(methods, default=pl.col("method")).alias("Method"),
            pl.col("amount_cents").map_elements(euros, return_dtype=pl.String).alias("Amount"),
        ), hide_index=True, key="bill.payments")  # fmt: skip
    with ctx.tenant() as session:
        pdf = invoice_pdf(session, practice_id, invoice_id, master_key=app_runtime().master_key())
    st.download_button("Download PDF", pdf, file_name=f"{view.number}.pdf", mime="application/pdf",
                       key="bill.pdf", icon=":material/picture_as_pdf:")  # fmt: skip

    if not can_write:
        st.stop()
    today = ctx.now().astimezone(zone).date()
    errors: dict[str, str] = {}
    if view.is_draft:
        price_by_id = {p.product_id: p for p in prices}
        with st.form("bill.line_form"):
            st.markdown("**Add a line**")
            cols = st.columns([3, 1, 1])
            product_id = cols[0].selectbox("Item", list(price_by_id), index=None, key="bill.l.product",
                                           format_func=lambda i: f"{price_by_id[i].name} · {euros(price_by_id[i].price_cents)}"
                                           f" · {fmt.percent(price_by_id[i].vat_rate_bp / 10_000, 0)} VAT")  # fmt: skip
            product_slot = cols[0].empty()
            quantity = cols[1].text_input("Quantity", value="1", key="bill.l.quantity")
            quantity_slot = cols[1].empty()
            discount = cols[2].text_input("Discount %", key="bill.l.discount")
            discount_slot = cols[2].empty()
            add = st.form_submit_button("Add line")
        if add:
            try:
                with ctx.tenant() as session:
                    invoice_lines.add_line(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                           product_id=product_id, quantity=quantity, discount_percent=discount)  # fmt: skip
            except BillingError as exc:
                errors[exc.field] = str(exc)
            else:
                _done(
                    "Line added.",
                    invoice_id,
                    {"bill.l.product": None, "bill.l.quantity": "1", "bill.l.discount": ""},
                )
        ctx.field_errors(
            errors, {"product": product_slot, "quantity": quantity_slot, "discount": discount_slot}
        )
        line_ids = {r["id"]: r for r in view.lines.iter_rows(named=True)}
        unpriced = {i: r for i, r in line_ids.items() if r["needs_price"]}
        if unpriced:
            with st.form("bill.price_form"):
                st.markdown("**Give a price**")
                cols = st.columns([3, 1])
                price_line = cols[0].selectbox("Line", list(unpriced), key="bill.pr.line",
                                               format_func=lambda i: unpriced[i]["description"])  # fmt: skip
                price = cols[1].text_input("Unit price excl. VAT (€)", key="bill.pr.price")
                price_slot = cols[1].empty()
                set_price = st.form_submit_button("Set price")
            if set_price:
                try:
                    with ctx.tenant() as session:
                        invoice_lines.price_line(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                                 line_id=price_line, price=price)  # fmt: skip
                except BillingError as exc:
                    errors[exc.field] = str(exc)
                else:
                    _done("Price set.", invoice_id, {"bill.pr.price": ""})
            ctx.field_errors({k: v for k, v in errors.items() if k == "price"}, {"price": price_slot})
        if line_ids:
            with st.form("bill.remove_form"):
                st.markdown("**Remove a line**")
                cols = st.columns([2, 3])
                remove = cols[0].selectbox("Line", list(line_ids), key="bill.rm.line",
                                           format_func=lambda i: line_ids[i]["description"])  # fmt: skip
                reason = cols[1].text_input(
                    "Reason (kept with the invoice)", key="bill.rm.reason", max_chars=200
                )
                reason_slot = cols[1].empty()
                remove_now = st.form_submit_button("Remove line")
            if remove_now:
                try:
                    with ctx.tenant() as session:
                        invoice_lines.remove_line(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                                  line_id=remove, reason=reason)  # fmt: skip
                except BillingError as exc:
                    errors[exc.field] = str(exc)
                else:
                    _done(
                        "Line removed; the reason is kept with the invoice.",
                        invoice_id,
                        {"bill.rm.reason": ""},
                    )
            ctx.field_errors({k: v for k, v in errors.items() if k == "reason"}, {"reason": reason_slot})
        with ctx.tenant() as session:
            upcoming, origin = numbering.next_number_preview(session, practice_id, today)
        st.caption(f"Issuing gives number {upcoming} "
                   f"({'continues the practice’s series' if origin != 'default' else 'a new series per year'}).")  # fmt: skip
        if st.button("Issue invoice", type="primary", key="bill.issue"):
            try:
                with ctx.tenant() as session:
                    issued = issuing.issue(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                           issued_on=today)  # fmt: skip
                    number = issued.number
            except BillingError as exc:
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
            amount = cols[1].text_input("Amount (€)", value=fmt.number(view.open_cents / 100, 2),
                                        key=f"bill.p.amount.{invoice_id}")  # fmt: skip
            amount_slot = cols[1].empty()
            pay = st.form_submit_button("Record payment", type="primary")
        if pay:
            try:
                with ctx.tenant() as session:
                    payments.record_payment(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                            method=method, amount_cents=parse_amount(amount))  # fmt: skip
            except BillingError as exc:
                errors[exc.field] = str(exc)
            else:
                paid = parse_amount(amount)
                _done(f"Payment of {euros(paid)} recorded.", invoice_id,
                      {f"bill.p.amount.{invoice_id}": fmt.number(max(view.open_cents - paid, 0) / 100, 2)})  # fmt: skip
        ctx.field_errors(errors, {"method": method_slot, "amount": amount_slot})
    if view.status in ("issued", "paid") and not view.credit_of:
        with st.expander("Credit this invoice"):
            confirm = st.checkbox(
                f"Yes, credit the whole of {view.number}", key=f"bill.credit_ok.{invoice_id}"
            )
            if st.button("Create credit note", key="bill.credit", disabled=not confirm):
                with ctx.tenant() as session:
                    note = issuing.credit(session, ctx.actor(), practice_id=practice_id, invoice_id=invoice_id,
                                          issued_on=today)  # fmt: skip
                    note_id, note_number = note.id, note.number
                _done(f"Credit note {note_number} issued.", note_id)
