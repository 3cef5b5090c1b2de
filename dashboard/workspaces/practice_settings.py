"""Practice settings: the details every invoice must carry (address, VAT, KvK, IBAN), the invoice number
series and the labs lab orders go to, kept by the practice manager without SQL."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import lab_destinations
from dashboard.components import session as ctx
from warehouse.billing import numbering
from warehouse.billing.practice_details import practice_details_problems
from warehouse.kernel import formatting as fmt
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import PRACTICE_SETTINGS, NotPermitted
from warehouse.tenants import practice_settings as ps

state = st.session_state
if not ctx.may(PRACTICE_SETTINGS):
    st.error(f"Your role at {ctx.here()} cannot change the practice's settings.")
    st.stop()
practice_id = ctx.one_practice("settings.practice")
ctx.breadcrumbs("Practice settings", ctx.practice_name(practice_id))
st.title("Practice settings")
if flash := state.pop("settings.flash", None):
    st.success(flash)
today = ctx.now().astimezone(ctx.zone(practice_id)).date()
LABELS = {"address": "Street and number", "postcode": "Postcode", "city": "City",
          "vat_number": "VAT number (btw-nummer)", "kvk_number": "KvK number", "iban": "IBAN"}  # fmt: skip
ORIGINS = {
    "detected": "continued from the numbers the practice already used (its Animana invoices first)",
    "default": "the default series, per year (no invoice issued yet)",
    "configured": "set up here",
}

with ctx.tenant() as session:
    saved = ps.practice_details(session, practice_id)
    problems = practice_details_problems(session.get(Tenant, practice_id))
    overview = ps.series_overview(session, practice_id, today)
    history = ps.settings_history(session, practice_id)

# The form's fields start from what is saved, once per practice (after a save they are read again, and
# after a visit to another page, which drops the fields' state).
if state.get("settings.loaded") != practice_id or any(f"settings.d.{c}" not in state for c in saved):
    for column, value in saved.items():
        state[f"settings.d.{column}"] = value
    state["settings.loaded"] = practice_id


def _saved(message: str, *keys: str) -> None:
    for key in keys:
        state.pop(key, None)
    state["settings.flash"] = message
    st.rerun()


st.subheader("Details on the invoice")
st.caption("A Dutch invoice must carry the practice's address, VAT number, KvK number and IBAN; invoices are "
           "issued only when all of them are here.")  # fmt: skip
if problems:
    st.warning(f"Invoices cannot be issued yet: {'; '.join(problems)}.")
with st.form("settings.details"):
    slots: dict[str, object] = {}
    st.text_input(LABELS["address"], key="settings.d.address", max_chars=200)
    slots["address"] = st.empty()
    for row in (("postcode", "city"), ("vat_number", "kvk_number", "iban")):
        for column, col in zip(row, st.columns(len(row)), strict=True):
            col.text_input(LABELS[column], key=f"settings.d.{column}")
            slots[column] = col.empty()
    save = st.form_submit_button("Save details", type="primary")
if save:
    try:
        with ctx.tenant() as session:
            ps.save_practice_details(session, ctx.actor(), practice_id=practice_id,
                                     values={c: state[f"settings.d.{c}"] for c in ps.DETAIL_FIELDS})  # fmt: skip
    except ps.DetailsInvalid as exc:
        ctx.field_errors(exc.errors, slots)
        st.error("Nothing was saved: correct the fields marked above.")
    except NotPermitted as exc:
        st.error(str(exc))
    else:
        _saved("Details saved; every invoice issued from now on carries them.", "settings.loaded")

st.subheader("Invoice numbering")
st.caption("Invoice numbers are unique and run without gaps within the practice's series.")
cols = st.columns(3)
cols[0].metric("Current series", overview.pattern, help=f"Its origin: {ORIGINS[overview.origin]}.")
cols[1].metric("Last number issued", overview.last_issued or "none yet")
cols[2].metric("Next number", overview.next_number)
st.caption(f"The series is {ORIGINS[overview.origin]}.")

with st.expander("Set up a new series", expanded=bool(state.get("settings.s.prefix"))):
    st.write("For example a new series per year. The numbers already issued keep their numbers; the next "
             "invoice gets the first number of the new series.")  # fmt: skip
    cols = st.columns([2, 2, 1])
    prefix = cols[0].text_input("Prefix", key="settings.s.prefix", max_chars=numbering.MAX_PREFIX,
                                help="Letters, digits, '-', '/' or '.', e.g. VC or DKA-")  # fmt: skip
    prefix_slot = cols[0].empty()
    per_year = cols[1].radio("Numbers", ["per year", "running on"], key="settings.s.per_year",
                             captions=["start again at 1 each year", "never start again"]) == "per year"  # fmt: skip
    width = cols[2].number_input("Digits", min_value=3, max_value=10, value=5, step=1, key="settings.s.width")
    width_slot = cols[2].empty()
    errors: dict[str, str] = {}
    first = None
    try:
        with ctx.tenant() as session:
            first = ps.preview_series(session, practice_id, prefix=prefix, per_year=per_year, width=width,
                                      today=today)  # fmt: skip
    except numbering.SeriesError as exc:
        errors[exc.field] = str(exc)
    if first is not None:
        st.info(f"The next invoice issued would get number **{first}**.")
        confirmed = st.checkbox(f"I confirm: the next invoice is numbered {first}, and the numbers run on from "
                                "there.", key=f"settings.s.confirm.{first}")  # fmt: skip
        confirm_slot = st.empty()
        if st.button("Set up this series", type="primary", disabled=not confirmed, key="settings.s.set_up"):
            try:
                with ctx.tenant() as session:
                    number = ps.set_up_invoice_series(session, ctx.actor(), practice_id=practice_id, prefix=prefix,
                                                      per_year=per_year, width=width, today=today,
                                                      confirmed=confirmed)  # fmt: skip
            except numbering.SeriesError as exc:
                errors[exc.field] = str(exc)
            except NotPermitted as exc:
                st.error(str(exc))
            else:
                _saved(f"New series set up: the next invoice is numbered {number}.", "settings.s.prefix",
                       f"settings.s.confirm.{first}")  # fmt: skip
        ctx.field_errors({k: v for k, v in errors.items() if k == "confirm"}, {"confirm": confirm_slot})
        errors.pop("confirm", None)
    ctx.field_errors(errors, {"prefix": prefix_slot, "width": width_slot})

lab_destinations.render(practice_id)

with st.expander("Changes", expanded=False):
    if history.is_empty():
        st.caption("No changes made here yet.")
    else:
        st.dataframe(history.select(
            pl.col("at").map_elements(fmt.date_time, return_dtype=pl.String).alias("When"),
            pl.col("by").fill_null("system").alias("By"), pl.col("change").alias("Change"),
        ), hide_index=True, width="stretch", key="settings.history")  # fmt: skip
