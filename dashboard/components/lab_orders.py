"""Lab orders in the patient record: order a test from one of the practice's labs, and every order with where
it is (queued / sent / acknowledged / refused, and why / timed out / result in) and its results.

The sender (``vetconnect devices send-orders``, or the Dagster ``lab_order_sensor``) takes queued orders to the
lab; this component only writes the order and its retries (``warehouse.records.lab_orders``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from warehouse.kernel import formatting as fmt
from warehouse.records import lab_orders
from warehouse.records.errors import RecordsError
from warehouse.security.permissions import NotPermitted

OTHER_TEST = "other"
# The lab's abnormal flags as the record's lab table words them ("N" is normal: nothing to point at).
_FLAG_LABELS = {"H": "▲ high", "L": "▼ low", "N": ""}
_STATE_ICONS = {"queued": "⏳", "sent": "📤", "acknowledged": "✅", "refused": "⛔", "timed out": "⌛",
                "result in": "🧪", "partial result in": "🧪"}  # fmt: skip


def order_rows(orders: list[lab_orders.LabOrderView], zone: ZoneInfo) -> pl.DataFrame:
    """One labelled row per order, times in Dutch format in the practice's zone."""
    return pl.DataFrame(
        [
            {
                "Ordered": fmt.date_time(o.ordered_at, zone),
                "Test": f"{o.test_name} ({o.test_code})" if o.test_name else o.test_code or fmt.EMPTY,
                "Lab": o.destination or fmt.EMPTY,
                "Accession": o.accession_number,
                "State": f"{_STATE_ICONS.get(o.shown_state, '')} {o.shown_state}".strip(),
                "Why": o.why or "",
                "Sent": fmt.date_time(o.sent_at, zone) if o.sent_at else fmt.EMPTY,
                "Acknowledged": fmt.date_time(o.acked_at, zone) if o.acked_at else fmt.EMPTY,
                "Attempts": o.attempts,
            }
            for o in orders
        ],
        schema={
            "Ordered": pl.String,
            "Test": pl.String,
            "Lab": pl.String,
            "Accession": pl.String,
            "State": pl.String,
            "Why": pl.String,
            "Sent": pl.String,
            "Acknowledged": pl.String,
            "Attempts": pl.Int64,
        },  # fmt: skip
    )


def render_lab_orders(practice_id: int, patient_id: int, zone: ZoneInfo, *, can_write: bool) -> None:
    st.subheader("Lab orders")
    flash = st.session_state.pop("rec.lab.flash", None)
    if flash:
        st.success(flash)
    with ctx.tenant() as session:
        orders = lab_orders.lab_orders(session, practice_id, patient_id)
        labs = {d.id: d for d in lab_orders.destinations(session, practice_id)}
    if can_write:
        _order_form(practice_id, patient_id, labs)
    if not orders:
        st.caption("No lab orders.")
        return
    st.dataframe(order_rows(orders, zone), hide_index=True, width="stretch")
    for order in orders:
        if (
            can_write
            and order.retryable
            and st.button(
                f"Retry {order.accession_number}", key=f"rec.lab.retry.{order.id}", icon=":material/replay:"
            )
        ):
            try:
                with ctx.tenant() as session:
                    lab_orders.retry_order(session, ctx.actor(), practice_id=practice_id, order_id=order.id)
            except (RecordsError, NotPermitted) as exc:
                st.error(str(exc))
            else:
                st.session_state["rec.lab.flash"] = (
                    f"Order {order.accession_number} is queued to be sent again."
                )
                st.rerun()
    for order in orders:
        if order.results:
            with st.expander(f"Results of {order.accession_number} · {order.test_name or order.test_code}"):
                st.dataframe(
                    pl.DataFrame(
                        [{"Code": r.code, "Test": r.text or "", "Value": fmt.measured(r.value), "Unit": r.unit or "",
                          "Flag": _FLAG_LABELS.get(r.flag or "", r.flag)} for r in order.results]
                    ),
                    hide_index=True, width="stretch",
                )  # fmt: skip


def _order_form(practice_id: int, patient_id: int, labs: dict[int, lab_orders.DestinationView]) -> None:
    if not labs:
        st.info("The practice has no lab to send orders to yet.")
        return
    errors: dict[str, str] = {}
    # Not a form: the tests offered follow the chosen lab at once.
    cols = st.columns(2)
    destination_id = cols[0].selectbox("Lab", list(labs), key="rec.lab.destination",
                                       format_func=lambda i: f"{labs[i].name} ({labs[i].message_type})")  # fmt: skip
    destination_slot = cols[0].empty()
    offered = {t.code: t for t in labs[destination_id].tests} if destination_id in labs else {}
    test = cols[1].selectbox("Test", [*offered, OTHER_TEST], key="rec.lab.test", index=None,
                             placeholder="Choose a test",
                             format_func=lambda c: offered[c].label if c in offered else "Another test (type its code)")  # fmt: skip
    test_slot = cols[1].empty()
    code = name = ""
    if test == OTHER_TEST:
        other = st.columns(2)
        code = other[0].text_input("Test code", key="rec.lab.code", max_chars=64)
        name = other[1].text_input("Test name", key="rec.lab.name", max_chars=200)
    submitted = st.button("Send order", type="primary", key="rec.lab.submit")
    if submitted:
        chosen_code = code if test == OTHER_TEST else test
        try:
            with ctx.tenant() as session:
                order = lab_orders.place_order(
                    session, ctx.actor(), practice_id=practice_id, patient_id=patient_id,
                    destination_id=destination_id, test_code=chosen_code,
                    test_name=name if test == OTHER_TEST else None)  # fmt: skip
                accession = order.accession_number
        except RecordsError as exc:
            errors[exc.field] = str(exc)
        except NotPermitted as exc:
            errors["test"] = str(exc)
        else:
            st.session_state["rec.lab.flash"] = (
                f"Order {accession} is queued for {labs[destination_id].name}."
            )
            # The test is chosen again for the next order: left chosen, a second click sent the same test twice.
            empty_next_run({"rec.lab.test": None, "rec.lab.code": "", "rec.lab.name": ""})
            st.rerun()
    ctx.field_errors(errors, {"destination": destination_slot, "test": test_slot, "test_name": test_slot})
