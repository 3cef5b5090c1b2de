"""Clinical entry in the patient record: coded diagnoses (picked from the franchise's list, provisional or
confirmed, removed with a reason), weights (entry and chart) and imaging studies (preview and metadata).

The record page calls one function per tab. Everyone who may read the record sees the lists; the entry forms are
drawn only with ``can_write`` (RECORDS_WRITE at the practice), and the services check that permission again.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from warehouse.kernel import formatting as fmt
from warehouse.records import diagnoses, imaging, weights
from warehouse.records.errors import RecordsError
from warehouse.security.permissions import NotPermitted

state = st.session_state
STATUS_LABELS = {"provisional": "Provisional", "confirmed": "Confirmed"}


def _flash(section: str) -> None:
    flash = state.get("rec.ce.flash")
    if flash is not None and flash[0] == section:
        state.pop("rec.ce.flash")
        st.success(flash[1])


def _saved(section: str, message: str, empty: dict[str, object]) -> None:
    """After a save: empty the form's widgets, keep the message for its section, rerun the whole page (the
    record's lists and metrics change too)."""
    empty_next_run(empty)
    state["rec.ce.flash"] = (section, message)
    st.rerun(scope="app")


# --- Diagnoses ------------------------------------------------------------------------------------------------


def diagnoses_section(practice_id: int, patient_id: int, species: str, visits: pl.DataFrame, *,
                      zone: ZoneInfo, can_write: bool) -> None:  # fmt: skip
    """The patient's diagnoses with code, status and who; with ``can_write``, the picker and the changes."""
    _flash("diagnosis")
    with ctx.tenant() as session:
        current = diagnoses.patient_diagnoses(session, practice_id, patient_id)
    if current:
        table = pl.DataFrame(
            [(fmt.date(d.visit_started_at, tz=zone), d.term, d.code or fmt.EMPTY, d.venom_code or fmt.EMPTY,
              STATUS_LABELS[d.status], d.diagnosed_by or fmt.EMPTY) for d in current],
            schema=["Visit", "Diagnosis", "Code", "VeNom", "Status", "Diagnosed by"], orient="row",
        )  # fmt: skip
        st.dataframe(table, hide_index=True, width="stretch", key="rec.dx.table")
    else:
        st.caption("No diagnoses recorded.")
    if not can_write:
        return
    if not visits.height:
        st.info("No visit of this patient to add a diagnosis to (write a consult note first).")
        return
    _diagnosis_picker(practice_id, species, visits, zone)
    if current:
        _diagnosis_changes(practice_id, current)


@st.fragment
def _diagnosis_picker(practice_id: int, species: str, visits: pl.DataFrame, zone: ZoneInfo) -> None:
    """Search the coded list, choose one or more, a status, save. Chosen entries stay chosen while searching."""
    st.subheader("Add diagnoses")
    visit_labels = {v["id"]: f"{fmt.date_time(v['started_at'], zone)} · {v['reason'] or 'Consult'}"
                    for v in visits.iter_rows(named=True)}  # fmt: skip
    visit_id = st.selectbox("Visit", list(visit_labels), format_func=visit_labels.get, key="rec.dx.visit")
    visit_slot = st.empty()
    query = st.text_input("Search the coded list", key="rec.dx.query", placeholder="Term, code or VeNom id")
    with ctx.tenant() as session:
        found = diagnoses.diagnosis_codes(session, practice_id, query=query, species=species)
        chosen_ids = state.get("rec.dx.codes") or []
        missing = [i for i in chosen_ids if i not in {c.id for c in found}]
        kept = [c for c in diagnoses.diagnosis_codes(session, practice_id, species=species, limit=1000)
                if c.id in missing]  # fmt: skip
    options = {c.id: c for c in (*kept, *found)}
    chosen = st.multiselect("Diagnoses", list(options), format_func=lambda i: options[i].label,
                            key="rec.dx.codes", placeholder="Choose from the coded list")  # fmt: skip
    if query.strip() and not found:
        st.caption(f"Nothing on the list matches “{query.strip()}”.")
    code_slot = st.empty()
    status = st.radio("Status", list(STATUS_LABELS), format_func=STATUS_LABELS.get, horizontal=True,
                      key="rec.dx.status")  # fmt: skip
    status_slot = st.empty()
    errors: dict[str, str] = {}
    if st.button("Add diagnoses", type="primary", key="rec.dx.add"):
        try:
            with ctx.tenant() as session:
                added = diagnoses.add_diagnoses(session, ctx.actor(), practice_id=practice_id, visit_id=visit_id,
                                                code_ids=chosen, status=status)  # fmt: skip
                summary = ", ".join(d.term for d in added)
        except RecordsError as exc:
            errors[exc.field] = str(exc)
        except NotPermitted as exc:
            errors["diagnosis_code"] = str(exc)
        else:
            _saved("diagnosis", f"Added ({STATUS_LABELS[status].lower()}): {summary}.",
                   {"rec.dx.codes": [], "rec.dx.query": ""})  # fmt: skip
    ctx.field_errors(errors, {"visit": visit_slot, "diagnosis_code": code_slot, "status": status_slot})


def _diagnosis_changes(practice_id: int, current: list[diagnoses.DiagnosisView]) -> None:
    """Confirm (or make provisional again) one diagnosis, or remove it with a reason."""
    st.subheader("Change a diagnosis")
    by_id = {d.id: d for d in current}
    diagnosis_id = st.selectbox("Diagnosis", list(by_id), key="rec.dx.change",
                                format_func=lambda i: f"{by_id[i].term} ({by_id[i].status})")  # fmt: skip
    diagnosis_slot = st.empty()
    other = "provisional" if by_id[diagnosis_id].status == "confirmed" else "confirmed"
    left, right = st.columns(2)
    reason = right.text_input("Reason for removal", key="rec.dx.reason",
                              placeholder="e.g. ruled out by the lab result")  # fmt: skip
    reason_slot = right.empty()
    mark, remove = (
        left.button(f"Mark {other}", key="rec.dx.set_status"),
        right.button("Remove", key="rec.dx.remove"),
    )
    errors: dict[str, str] = {}
    done: tuple[str, dict[str, object]] | None = None
    try:
        if mark:
            with ctx.tenant() as session:
                changed = diagnoses.set_status(session, ctx.actor(), practice_id=practice_id,
                                               diagnosis_id=diagnosis_id, status=other)  # fmt: skip
                done = f"{changed.term} is now {other}.", {}
        elif remove:
            with ctx.tenant() as session:
                removed = diagnoses.remove_diagnosis(session, ctx.actor(), practice_id=practice_id,
                                                     diagnosis_id=diagnosis_id, reason=reason)  # fmt: skip
                done = f"{removed.term} was removed from the record.", {"rec.dx.reason": ""}
    except RecordsError as exc:
        errors[exc.field] = str(exc)
    except NotPermitted as exc:
        errors["diagnosis"] = str(exc)
    if done is not None:  # after the transaction committed: a rerun inside it would roll it back
        _saved("diagnosis", *done)
    ctx.field_errors(errors, {"diagnosis": diagnosis_slot, "status": diagnosis_slot, "reason": reason_slot})


# --- Weights --------------------------------------------------------------------------------------------------


def weight_section(
    practice_id: int, patient_id: int, *, zone: ZoneInfo, today: dt.date, can_write: bool
) -> None:
    """The weight chart (local dates, kg) and the list; with ``can_write``, the entry form."""
    _flash("weight")
    with ctx.tenant() as session:
        series = weights.patient_weights(session, practice_id, patient_id, zone)
    if series.height:
        st.plotly_chart(weight_chart(series), key="rec.weight_chart")
        st.dataframe(series.select("when", "weight", "recorded_by").reverse().fill_null(fmt.EMPTY),
                     hide_index=True, width="stretch", key="rec.w.table",
                     column_config={"when": "Measured", "weight": "Weight", "recorded_by": "Recorded by"})  # fmt: skip
    else:
        st.caption("No weights recorded.")
    if can_write:
        _weight_form(practice_id, patient_id, zone, today)


def weight_chart(series: pl.DataFrame):  # noqa: ANN201 - a plotly Figure
    """Weight over time: the practice's local dates (day-month-year), kg with a decimal comma."""
    fig = px.line(series.to_pandas(), x="measured_at", y="weight_kg", markers=True,
                  custom_data=["when", "weight"], labels={"measured_at": "", "weight_kg": "kg"})  # fmt: skip
    fig.update_traces(hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, separators=",.")
    fig.update_xaxes(tickformat="%d-%m-%Y")
    first, last = series["measured_at"].min(), series["measured_at"].max()
    if last - first < dt.timedelta(days=7):
        # Within a few days plotly puts its ticks hours apart, and a date-only label repeated the same date
        # under each: show the week around the measurements, one tick a day.
        middle = first + (last - first) / 2
        fig.update_xaxes(range=[middle - dt.timedelta(days=3.5), middle + dt.timedelta(days=3.5)],
                         dtick=dt.timedelta(days=1).total_seconds() * 1000)  # fmt: skip
    fig.update_yaxes(title_text="kg", rangemode="tozero")
    return fig


def _weight_form(practice_id: int, patient_id: int, zone: ZoneInfo, today: dt.date) -> None:
    st.subheader("Record a weight")
    errors: dict[str, str] = {}
    with st.form("rec.weight_form"):
        weight = st.text_input("Weight (kg)", key="rec.w.kg", placeholder="e.g. 4,35")
        weight_slot = st.empty()
        day_col, time_col = st.columns(2)
        measured_on = day_col.date_input("Date", value=today, format="DD-MM-YYYY", key="rec.w.day")
        measured_time = time_col.time_input("Time", value=ctx.now().astimezone(zone).time().replace(second=0, microsecond=0),
                                            step=60, key="rec.w.time")  # fmt: skip
        when_slot = st.empty()
        submitted = st.form_submit_button("Record weight", type="primary")
    if submitted:
        try:
            with ctx.tenant() as session:
                saved = weights.record_weight(session, ctx.actor(), practice_id=practice_id, patient_id=patient_id,
                                              weight=weight, measured_on=measured_on, measured_time=measured_time)  # fmt: skip
                message = f"Weight recorded: {weights.kg_text(saved.weight_grams / 1000)} kg."
        except RecordsError as exc:
            errors[exc.field] = str(exc)
        except NotPermitted as exc:
            errors["weight"] = str(exc)
        else:
            _saved("weight", message, {"rec.w.kg": ""})
    ctx.field_errors(errors, {"weight": weight_slot, "measured_at": when_slot})


# --- Imaging --------------------------------------------------------------------------------------------------


def imaging_section(practice_id: int, patient_id: int, *, zone: ZoneInfo) -> None:
    """Each study with its preview and metadata, newest first."""
    with ctx.tenant() as session:
        studies = imaging.patient_studies(session, practice_id, patient_id)
    if not studies:
        st.caption("No imaging studies.")
        return
    for index, study in enumerate(studies):
        with st.expander(f"{fmt.date(study.study_date) if study.study_date else fmt.EMPTY} · {study.title}",
                         expanded=index == 0):  # fmt: skip
            picture, details = st.columns([2, 1])
            if study.preview_png:
                picture.image(study.preview_png, caption=study.title, width="stretch")
            else:
                picture.caption("No preview: the file carries no image the preview could be drawn from.")
            details.markdown(
                "  \n".join(f"**{label}:** {value or fmt.EMPTY}" for label, value in (
                    ("Study date", study.study_date and fmt.date(study.study_date)),
                    ("Modality", study.modality_name), ("Body part", study.body_part),
                    ("Description", study.description), ("Device", study.device),
                    ("Received", fmt.date_time(study.received_at, zone)),
                ))
            )  # fmt: skip
