"""Patient record: timeline, SOAP notes, vaccinations (due/overdue), prescriptions, flagged lab results, weight
chart, documents; and the clinical writes (consult note, vaccination, prescription, attachment)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import clinical_entry
from dashboard.components import session as ctx
from dashboard.components.deceased import deceased_action
from dashboard.components.forms import empty_next_run
from dashboard.components.lab_orders import render_lab_orders
from dashboard.components.pages import page
from dashboard.components.referral_reports import referral_reports_section
from dashboard.components.writeback import badge, markers
from dashboard.runtime import app_runtime
from warehouse.kernel import formatting as fmt
from warehouse.records import consults, documents, prescriptions, vaccinations, weights
from warehouse.records.errors import RecordsError
from warehouse.records.patient_record import born_text, patient_record
from warehouse.scheduling.errors import SchedulingError
from warehouse.scheduling.patients import patient_choices
from warehouse.schema.clinical import DISPENSING_CATEGORIES
from warehouse.security.permissions import (
    CLIENTS_READ,
    CONSULT_WRITE,
    PRESCRIBE_VET_ONLY,
    RECORDS_READ,
    RECORDS_WRITE,
    SCHEDULE_WRITE,
    NotPermitted,
)

user = ctx.user()
state = st.session_state
if not ctx.may(RECORDS_READ):
    st.error(f"Your role at {ctx.here()} cannot open patient records.")
    st.stop()
can_write = ctx.may(RECORDS_WRITE)
can_consult = can_write and ctx.may(CONSULT_WRITE)

practice_ids = ctx.context().practice_ids
focus = state.get("focus")
if focus is not None and focus.kind in ("patient", "appointment") and focus.practice_id in practice_ids:
    state.pop("focus")
    state["rec.practice"] = focus.practice_id
    state["rec.patient"] = focus.id if focus.kind == "patient" else focus.patient_id
practice_id = ctx.one_practice("rec.practice")
zone = ctx.zone(practice_id)

finder, picker = st.columns(2)
query = finder.text_input("Find patient", key="rec.query", placeholder="Name or chip number")
with ctx.tenant() as session:
    choices = patient_choices(
        session, practice_id, query=query, patient_id=state.get("rec.patient"), include_deceased=True
    )
by_id = {c.id: c for c in choices}
if state.get("rec.patient") not in by_id:
    state.pop("rec.patient", None)
patient_id = picker.selectbox("Patient", list(by_id), format_func=lambda i: by_id[i].label, index=None,
                              placeholder="Find the patient, then choose", key="rec.patient")  # fmt: skip
if patient_id is None:
    ctx.breadcrumbs("Patient record")
    st.title("Patient record")
    st.info("Search for a patient by name or chip number to open the record.")
    st.stop()

today = ctx.now().astimezone(zone).date()
with ctx.tenant() as session:
    rec = patient_record(session, practice_id, patient_id, today=today, now=ctx.now())
    marked = markers(session, practice_id, [("patient", patient_id)])
if rec is None:
    st.warning("This patient is not available.")
    st.stop()

ctx.breadcrumbs("Patient record", ctx.practice_name(practice_id), rec.name)
st.title(f"{rec.name} · {rec.species}{' (deceased)' if rec.deceased else ''}")
badge(marked.get(("patient", patient_id)))
st.write(" · ".join(f for f in (rec.breed, rec.sex.replace("_", " "),
                                born_text(rec.date_of_birth, rec.date_of_birth_estimated),
                                f"chip {rec.microchip}" if rec.microchip else None,
                                f"insured with {rec.insured_with}" if rec.insured_with else None) if f))  # fmt: skip
if rec.owners.height:
    # One row, the owners right after the word (equal columns put one owner half a page away from it).
    owners_row = st.container(horizontal=True, vertical_alignment="center")
    owners_row.caption("Owners", width="content")
    for owner in rec.owners.iter_rows(named=True):
        label = f"{owner['name']}{' (primary)' if owner['primary'] and rec.owners.height > 1 else ''}"
        if ctx.may(CLIENTS_READ) and owners_row.button(label, key=f"rec.owner.{owner['client_id']}",
                                                       icon=":material/person:"):  # fmt: skip
            state["card.client"] = (practice_id, owner["client_id"])
            st.switch_page(page("client_card").path)

if (
    ctx.may(SCHEDULE_WRITE)
    and not rec.deceased
    and st.button("Book an appointment", icon=":material/event:", key="rec.book")
):
    state["sched.practice"] = practice_id
    state["sched.patient_focus"] = (patient_id, rec.primary_client_id)
    st.switch_page(page("scheduling").path)
deceased_action(practice_id, patient_id, deceased=rec.deceased, today=today)

overdue = rec.vaccinations.filter(pl.col("status") == "overdue").height
due = rec.vaccinations.filter(pl.col("status") == "due").height
flagged = rec.lab_results.filter(pl.col("flag") != "").height
metrics = st.columns(4)
metrics[0].metric("Visits", rec.visits.height)
metrics[1].metric("Vaccinations overdue / due", f"{overdue} / {due}")
metrics[2].metric("Lab values flagged", flagged)
metrics[3].metric(
    "Last weight", f"{weights.kg_text(rec.weights['weight_kg'][-1])} kg" if rec.weights.height else "—"
)


def _local(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """Timestamps as the user reads them: local time, Dutch format."""
    return frame.with_columns(pl.col(c).map_elements(fmt.date_time, return_dtype=pl.String) for c in cols)


def _dates(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).map_elements(fmt.date, return_dtype=pl.String) for c in cols)


def _quantity(value: float) -> str:
    """``0.5`` -> ``0,5``, ``2.0`` -> ``2`` (quantities have at most three decimals)."""
    return fmt.number(value, 3).rstrip("0").rstrip(",")


def _flash(section: str) -> None:
    """The outcome of the last write in ``section``, shown next to the form it came from."""
    flash = state.get("rec.flash")
    if flash is not None and flash[0] == section:
        state.pop("rec.flash")
        st.success(flash[1])


tab_names = ["Timeline", "Visits", "Vaccinations", "Prescriptions", "Lab results", "Weight", "Documents",
             "Diagnoses", "Imaging"]  # fmt: skip
if can_write:
    tab_names.append("Write")
# Keyed tabs keep the chosen tab across reruns: a save (or a refused save) reruns the page, and unkeyed tabs
# would open on the first tab, hiding the message.
tabs = dict(zip(tab_names, st.tabs(tab_names, key="rec.tab", on_change="rerun"), strict=True))

with tabs["Timeline"]:
    if rec.timeline.height:
        timeline = rec.timeline.with_columns(
            pl.struct("at", "all_day").map_elements(
                lambda r: fmt.date(r["at"], tz=zone) if r["all_day"] else fmt.date_time(r["at"], zone),
                return_dtype=pl.String,
            )
        ).select("at", "kind", "title", "detail")
        st.dataframe(timeline, hide_index=True, width="stretch",
                     column_config={"at": "When", "kind": "Kind", "title": "What", "detail": "Details"})  # fmt: skip
    else:
        st.caption("Nothing recorded yet.")

with tabs["Visits"]:
    for index, visit in enumerate(rec.visits.iter_rows(named=True)):
        when = visit["started_at"].astimezone(zone)
        signed = "signed" if visit["signed_at"] else "not signed"
        with st.expander(f"{when:%d-%m-%Y %H:%M} · {visit['reason'] or 'Consult'} · {visit['vet'] or ''} · {signed}",
                         expanded=index == 0):  # fmt: skip
            for label, key in (("S — Subjective", "subjective"), ("O — Objective", "objective"),
                               ("A — Assessment", "assessment"), ("P — Plan", "plan")):  # fmt: skip
                if visit[key]:
                    st.markdown(f"**{label}**  \n{visit[key]}")
            if visit["diagnoses"]:
                st.markdown(f"**Diagnoses:** {visit['diagnoses']}")
    if not rec.visits.height:
        st.caption("No visits yet.")

with tabs["Vaccinations"]:
    if rec.vaccinations.height:

        def _colour(status: str) -> str:
            return {"overdue": "🔴 overdue", "due": "🟠 due", "ok": "🟢 ok"}.get(status, status)

        st.dataframe(_dates(rec.vaccinations.drop("id"), "given_on", "due_on")
                     .with_columns(pl.col("status").map_elements(_colour, return_dtype=pl.String)),
                     hide_index=True, width="stretch",
                     column_config={"vaccine_name": "Vaccine", "batch_number": "Batch", "given_on": "Given on",
                                    "due_on": "Booster due", "status": "Status"})  # fmt: skip
    else:
        st.caption("No vaccinations recorded.")

with tabs["Prescriptions"]:
    if rec.prescriptions.height:
        shown = _local(rec.prescriptions.drop("id"), "prescribed_at").with_columns(
            pl.col("quantity").map_elements(_quantity, return_dtype=pl.String), pl.col("dosage_instructions", "prescribed_by").fill_null(fmt.EMPTY)
        )  # fmt: skip
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={"prescribed_at": "Prescribed", "product_name": "Medicine", "quantity": "Quantity",
                                    "dosage_instructions": "Dosage", "dispensing_category": "Category",
                                    "prescribed_by": "Prescribed by"})  # fmt: skip
    else:
        st.caption("No prescriptions.")

with tabs["Lab results"]:
    if rec.lab_results.height:
        shown = _local(rec.lab_results, "observed_at").with_columns(
            pl.col("value", "ref_low", "ref_high").map_elements(fmt.measured, return_dtype=pl.String)
        ).with_columns(
            pl.concat_str([pl.col("ref_low").fill_null(""), pl.col("ref_high").fill_null("")], separator=" – ").alias("reference"),
            pl.when(pl.col("flag") == "H").then(pl.lit("▲ high")).when(pl.col("flag") == "L").then(pl.lit("▼ low"))
            .otherwise(pl.col("flag")).alias("flag"),
        ).select("observed_at", "code", "text", "value", "unit", "reference", "flag", "status")  # fmt: skip
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={"observed_at": "Observed", "code": "Code", "text": "Test", "value": "Value",
                                    "unit": "Unit", "reference": "Reference", "flag": "Flag", "status": "Status"})  # fmt: skip
        if flagged:
            st.warning(f"{flagged} value(s) outside the reference range.")
    else:
        st.caption("No lab results.")
    render_lab_orders(practice_id, patient_id, zone, can_write=can_write)

with tabs["Weight"]:
    clinical_entry.weight_section(practice_id, patient_id, zone=zone, today=today, can_write=can_write)

with tabs["Documents"]:
    if rec.documents.height:
        st.dataframe(_local(rec.documents.drop("stored"), "uploaded_at"), hide_index=True, width="stretch")
        stored = {r["id"]: r for r in rec.documents.filter(pl.col("stored")).iter_rows(named=True)}
        if stored:
            doc_cols = st.columns([3, 1])
            chosen = doc_cols[0].selectbox("Document", list(stored), key="rec.document",
                                           format_func=lambda i: f"{stored[i]['title']} ({stored[i]['filename']})")  # fmt: skip
            if doc_cols[1].button("Open", key="rec.open_document"):
                try:
                    with ctx.tenant() as session:
                        state["rec.document_bytes"] = documents.read_document(
                            session, ctx.actor(), practice_id=practice_id, document_id=chosen,
                            master_key=app_runtime().master_key())  # fmt: skip
                except (RecordsError, ValueError) as exc:
                    st.error(f"The document cannot be opened: {exc}")
            opened = state.get("rec.document_bytes")
            if opened is not None and opened.id == chosen:
                st.download_button(f"Download {opened.filename}", opened.content, file_name=opened.filename,
                                   mime=opened.content_type, key="rec.download")  # fmt: skip
    else:
        st.caption("No documents.")

with tabs["Diagnoses"]:
    clinical_entry.diagnoses_section(practice_id, patient_id, rec.species, rec.visits, zone=zone,
                                     can_write=can_write)  # fmt: skip
with tabs["Imaging"]:
    clinical_entry.imaging_section(practice_id, patient_id, zone=zone)
referral_reports_section(practice_id, patient_id, zone=zone)

if not can_write:
    st.stop()


def _done(section: str, message: str, empty: dict[str, object] | None = None) -> None:
    """After a save: empty the form (its widgets' keys, as the browser sees them), keep the message for the
    form's section, rerun."""
    empty_next_run(empty or {})
    state["rec.flash"] = (section, message)
    st.rerun()


CONSULT_EMPTY = {"rec.c.subjective": "", "rec.c.objective": "", "rec.c.assessment": "", "rec.c.plan": "",
                 "rec.c.diagnoses": [], "rec.c.sign": False, "rec.c.finish": False}  # fmt: skip
FROM_LIST, TYPED = "From the price list", "Type a name"
# The empty form. Set (not popped) before the widgets are drawn: a popped key resets the server's value but
# the browser kept showing the last medicine, so the next prescription looked pre-filled.
RX_EMPTY = {"rec.p.source": FROM_LIST, "rec.p.product": None, "rec.p.name": "", "rec.p.category": None,
            "rec.p.confirm": False, "rec.p.quantity": "", "rec.p.dosage": ""}  # fmt: skip


@st.fragment
def _prescription_form() -> None:
    """One way to name the medicine at a time: a medicine of the price list (its category is the list's) or a
    typed name (with a category, never less restricted than a listed medicine of that name). Not a form: the
    category and any species warning show as soon as the medicine is chosen; only this fragment reruns."""
    if state.pop("rec.p.saved", False):
        state.update(RX_EMPTY)
    with ctx.tenant() as session:
        meds = {m.product_id: m for m in prescriptions.medicines(session, practice_id)}
    source = st.radio("Medicine", (FROM_LIST, TYPED), key="rec.p.source", horizontal=True)
    product_id: int | None = None
    name: str | None = None
    category: str | None = None
    if source == FROM_LIST:
        product_id = st.selectbox("Medicine from the price list", list(meds), index=None, key="rec.p.product",
                                  placeholder="Choose a medicine", format_func=lambda i: meds[i].label)  # fmt: skip
        matches = [meds[product_id]] if product_id is not None else []
    else:
        name = st.text_input("The medicine's name", key="rec.p.name", max_chars=200)
        with ctx.tenant() as session:
            matches = prescriptions.medicines_named(session, practice_id, name) if name.strip() else []
    product_slot = st.empty()
    listed_category = next((m.dispensing_category for m in matches if m.dispensing_category), None)
    if source == FROM_LIST and listed_category:
        st.caption(f"Dispensing category **{listed_category}** (from the price list).")
    else:
        if listed_category:
            st.caption(f"On the price list as {matches[0].label}: choose {listed_category} or stricter.")
        category = st.selectbox("Dispensing category", DISPENSING_CATEGORIES, index=None, key="rec.p.category",
                                help="UDA and UDD medicines may be prescribed by a veterinarian only.")  # fmt: skip
    category_slot = st.empty()
    warnings = [w for m in matches if (w := prescriptions.species_warning(m, rec.species))]
    confirm = False
    if warnings:
        st.warning(warnings[0])
        confirm = st.checkbox(f"I prescribe it for this {rec.species} anyway", key="rec.p.confirm")
    confirm_slot = st.empty()
    quantity = st.text_input("Quantity", key="rec.p.quantity", placeholder="e.g. 2 or 0,5")
    quantity_slot = st.empty()
    dosage = st.text_area("Dosage instructions", key="rec.p.dosage")
    if not ctx.may(PRESCRIBE_VET_ONLY):
        st.caption("UDA and UDD medicines need a veterinarian.")
    errors: dict[str, str] = {}
    if st.button("Prescribe", type="primary", key="rec.p.submit"):
        try:
            with ctx.tenant() as session:
                saved = prescriptions.prescribe(
                    session, ctx.actor(), practice_id=practice_id, patient_id=patient_id, product_id=product_id,
                    product_name=name, dispensing_category=category, quantity=quantity,
                    dosage_instructions=dosage, confirm_other_species=confirm)  # fmt: skip
                summary = (f"Prescribed {saved.product_name} ({saved.dispensing_category}), quantity "
                           f"{_quantity(float(saved.quantity))}"
                           f"{f' · {saved.dosage_instructions}' if saved.dosage_instructions else ''}")  # fmt: skip
        except RecordsError as exc:
            errors[exc.field] = str(exc)
        except NotPermitted as exc:
            errors["dispensing_category"] = f"Not allowed: {exc}."
        else:
            state["rec.p.saved"] = True
            _done("prescription", summary)
    ctx.field_errors(errors, {"product": product_slot, "dispensing_category": category_slot,
                              "confirm_other_species": confirm_slot, "quantity": quantity_slot})  # fmt: skip


with tabs["Write"]:
    consult_tab, vacc_tab, rx_tab, upload_tab = st.tabs(
        ["Consult note", "Vaccination", "Prescription", "Attachment"], key="rec.write_tab", on_change="rerun"
    )
    with consult_tab:
        _flash("consult")
        appointments = {r["id"]: r for r in rec.open_appointments.iter_rows(named=True)}
        if not can_consult:
            st.info("Your role cannot write consult notes.")
        elif not appointments:
            st.info("No appointment of this patient today to write a consult for (book or check in first).")
        else:
            errors: dict[str, str] = {}
            with ctx.tenant() as session:
                coded = consults.diagnosis_choices(session, practice_id)
            codes = dict(coded)
            with st.form("rec.consult_form"):
                appointment_id = st.selectbox(
                    "Appointment", list(appointments), key="rec.c.appointment",
                    format_func=lambda i: f"{appointments[i]['starts_at'].astimezone(zone):%d-%m %H:%M} · "
                                         f"{appointments[i]['type']} · {appointments[i]['status'].replace('_', ' ')}")  # fmt: skip
                appointment_slot = st.empty()
                subjective = st.text_area("S — Subjective (history)", key="rec.c.subjective")
                subjective_slot = st.empty()
                objective = st.text_area("O — Objective (examination)", key="rec.c.objective")
                objective_slot = st.empty()
                assessment = st.text_area("A — Assessment", key="rec.c.assessment")
                assessment_slot = st.empty()
                plan = st.text_area("P — Plan", key="rec.c.plan")
                plan_slot = st.empty()
                diagnoses = st.multiselect(
                    "Diagnoses",
                    [term for term, _ in coded],
                    key="rec.c.diagnoses",
                    accept_new_options=True,
                    format_func=lambda t: f"{t} · VeNom {codes[t]}" if t in codes else t,
                    placeholder="Choose from the practice's coded list, or type a new diagnosis",
                )
                diagnoses_slot = st.empty()
                cols = st.columns(2)
                sign = cols[0].checkbox("Sign the note (final)", key="rec.c.sign")
                finish = cols[1].checkbox("Finish the consult", key="rec.c.finish")
                submitted = st.form_submit_button("Save note", type="primary")
            if submitted:
                try:
                    with ctx.tenant() as session:
                        visit = consults.write_consult(
                            session, ctx.actor(), practice_id=practice_id, appointment_id=appointment_id,
                            note=consults.ConsultNote(subjective, objective, assessment, plan,
                                                      tuple(diagnoses)),
                            sign=sign, finish=finish)  # fmt: skip
                        visit_id = visit.id
                except RecordsError as exc:
                    errors[exc.field] = str(exc)
                except (NotPermitted, SchedulingError) as exc:
                    errors["appointment"] = str(exc)
                else:
                    _done("consult", f"Consult note saved (visit {visit_id}).", CONSULT_EMPTY)  # fmt: skip
            ctx.field_errors(errors, {"appointment": appointment_slot, "subjective": subjective_slot,
                                      "objective": objective_slot, "assessment": assessment_slot, "plan": plan_slot,
                                      "diagnoses": diagnoses_slot})  # fmt: skip

    with vacc_tab:
        _flash("vaccination")
        with ctx.tenant() as session:
            protocols = {p.id: p for p in vaccinations.vaccine_protocols(session, practice_id, rec.species)}
        if not protocols:
            st.info(f"The franchise has no vaccine protocol for {rec.species}s.")
        else:
            errors = {}
            with st.form("rec.vacc_form"):
                protocol_id = st.selectbox("Vaccine", list(protocols), key="rec.v.protocol", format_func=lambda i: (
                    f"{protocols[i].name} · booster after {protocols[i].booster_interval_days} days"
                    f"{' (practice interval)' if protocols[i].overridden else ''}"))  # fmt: skip
                protocol_slot = st.empty()
                given_on = st.date_input("Given on", value=today, format="DD-MM-YYYY", key="rec.v.given_on")
                given_slot = st.empty()
                batch = st.text_input("Batch number", key="rec.v.batch")
                batch_slot = st.empty()
                submitted = st.form_submit_button("Record vaccination", type="primary")
            if submitted:
                try:
                    with ctx.tenant() as session:
                        vaccination, reminder = vaccinations.record_vaccination(
                            session, ctx.actor(), practice_id=practice_id, patient_id=patient_id,
                            protocol_id=protocol_id, given_on=given_on, today=today, batch_number=batch)  # fmt: skip
                        due_on = reminder.due_on
                except RecordsError as exc:
                    errors[exc.field] = str(exc)
                except NotPermitted as exc:
                    errors["protocol"] = str(exc)
                else:
                    _done("vaccination", f"Vaccination recorded; booster reminder due {fmt.date(due_on)}.",
                          {"rec.v.batch": ""})  # fmt: skip
            ctx.field_errors(
                errors, {"protocol": protocol_slot, "given_on": given_slot, "batch_number": batch_slot}
            )

    with rx_tab:
        _flash("prescription")
        _prescription_form()

    with upload_tab:
        _flash("attachment")
        errors = {}
        with st.form("rec.upload_form"):
            upload = st.file_uploader(
                f"File ({', '.join(documents.ALLOWED_EXTENSIONS)}; at most {documents.MAX_BYTES // 1024 // 1024} MB)",
                key="rec.u.file")  # fmt: skip
            file_slot = st.empty()
            title = st.text_input("Title", key="rec.u.title")
            title_slot = st.empty()
            submitted = st.form_submit_button("Upload", type="primary")
        if submitted:
            if upload is None:
                errors["file"] = "Choose a file to upload."
            else:
                try:
                    with ctx.tenant() as session:
                        document = documents.upload_document(
                            session, ctx.actor(), practice_id=practice_id, patient_id=patient_id,
                            filename=upload.name, content=upload.getvalue(), title=title,
                            master_key=app_runtime().master_key())  # fmt: skip
                        stored_name = document.filename
                except RecordsError as exc:
                    errors[exc.field] = str(exc)
                else:
                    _done("attachment", f"{stored_name} is attached (stored encrypted).", {"rec.u.title": ""})
        ctx.field_errors(errors, {"file": file_slot, "title": title_slot})
