"""Merge duplicates: two clients (or two patients) of the practice side by side with what each has, the one that
stays chosen, a confirmation, and what moved; today's merges below, each with Undo while the practice's day lasts
(or the reason it can no longer be undone)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from warehouse.clients.merge import (
    MergeError,
    RecordRef,
    find_records,
    merge_clients,
    merge_patients,
    record_overview,
)
from warehouse.clients.merge_undo import merges_of_day, undo_merge
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.kernel import formatting as fmt
from warehouse.security.permissions import CLIENTS_MERGE, NotPermitted

state = st.session_state
if not ctx.may(CLIENTS_MERGE):
    st.error(f"Your role at {ctx.here()} cannot merge duplicate clients or patients.")
    st.stop()
practice_id = ctx.one_practice("merge.practice")
zone = ctx.zone(practice_id)
ctx.breadcrumbs("Merge duplicates", ctx.practice_name(practice_id))
st.title("Merge duplicates")
if flash := state.pop("merge.flash", None):
    st.success(flash)

# What refers to a client or patient, in the words of the page (the table name for anything new).
WHAT = {
    "appointment": "Appointments", "invoice": "Invoices", "payment": "Payments", "reminder": "Reminders",
    "document": "Documents", "event": "Activity log entries", "visit": "Consults", "diagnosis": "Diagnoses",
    "vaccination": "Vaccinations", "prescription": "Prescriptions", "weight_measurement": "Weights",
    "lab_order": "Lab orders", "lab_observation": "Lab results", "imaging_study": "Imaging studies",
    "device_message": "Device messages",
}  # fmt: skip
KINDS = {"client": ("Clients", "client"), "patient": ("Patients", "patient")}


def what(kind: str, table: str) -> str:
    if table == "client_patient":
        return "Animals" if kind == "client" else "Owners"
    return WHAT.get(table, table.replace("_", " ").capitalize())


def moved_table(kind: str, counts: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"What": [what(kind, t) for t in counts], "Rows": [fmt.number(n) for n in counts.values()]},
        schema={"What": pl.String, "Rows": pl.String},
    )


if (moved := state.pop("merge.moved", None)) is not None:  # what the merge just made moved: (kind, counts)
    st.dataframe(moved_table(*moved), hide_index=True)

kind = st.radio("Merge", list(KINDS), format_func=lambda k: KINDS[k][0], horizontal=True, key="merge.kind")
word = KINDS[kind][1]
st.caption(f"Find the two {word}s that are the same {'person' if kind == 'client' else 'animal'}. Everything of "
           f"the one that goes moves to the one that stays; it can be undone until the end of today.")  # fmt: skip

picked: dict[str, RecordRef | None] = {}
slots: dict[str, object] = {}
for side, col in zip(("a", "b"), st.columns(2), strict=True):
    query = col.text_input(f"Find {word} {side.upper()}", key=f"merge.q.{kind}.{side}",
                           placeholder="Name or number")  # fmt: skip
    with ctx.tenant() as session:
        found = find_records(session, practice_id, kind, query)
    labels = {c.ref.id: f"{c.label} · no. {c.ref.id}" for c in found}
    choice = col.selectbox(f"{word.capitalize()} {side.upper()}", list(labels), format_func=labels.get, index=None,
                           key=f"merge.pick.{kind}.{side}", placeholder="Type a name above")  # fmt: skip
    picked[side] = RecordRef(practice_id, choice) if choice is not None else None
    slots[side] = col.empty()

a, b = picked["a"], picked["b"]
if a is not None and b is not None:
    with ctx.tenant() as session:
        overview = {side: record_overview(session, kind, ref) for side, ref in (("a", a), ("b", b))}
    tables = list(dict.fromkeys([*overview["a"].counts, *overview["b"].counts]))
    st.dataframe(pl.DataFrame({
        "What": [what(kind, t) for t in tables],
        f"A: {overview['a'].label}": [fmt.number(overview["a"].counts.get(t, 0)) for t in tables],
        f"B: {overview['b'].label}": [fmt.number(overview["b"].counts.get(t, 0)) for t in tables],
    }, schema_overrides={"What": pl.String}), hide_index=True, key="merge.side_by_side")  # fmt: skip
    keep = st.radio("Which one stays?", ["a", "b"], horizontal=True, key=f"merge.keep.{kind}",
                    format_func=lambda s: f"{s.upper()}: {overview[s].label}")  # fmt: skip
    gone = "b" if keep == "a" else "a"
    survivor, duplicate = picked[keep], picked[gone]
    confirmed = st.checkbox(
        f"Everything of {overview[gone].label} moves to {overview[keep].label}, and {overview[gone].label} is "
        "removed.", key=f"merge.confirm.{kind}.{a.id}.{b.id}.{keep}",
    )  # fmt: skip
    if st.button("Merge", type="primary", disabled=not confirmed, key="merge.go"):
        merge = merge_clients if kind == "client" else merge_patients
        try:
            with ctx.tenant() as session:
                outcome = merge(session, ctx.actor(), survivor, duplicate, now=ctx.now())
        except MergeError as exc:
            side = {"survivor": keep, "duplicate": gone}.get(exc.field, gone)
            ctx.field_errors({side: str(exc)}, slots)
        except (NotPermitted, UpstreamRefused, UpstreamUnavailable) as exc:
            st.error(f"Nothing was merged: {exc}")
        else:
            total = sum(outcome.moved.values())
            state["merge.flash"] = (f"{overview[gone].label} was merged into {overview[keep].label}: "
                                    f"{fmt.number(total)} row(s) moved.")  # fmt: skip
            state["merge.moved"] = (kind, outcome.moved)
            for side in ("a", "b"):
                state.pop(f"merge.pick.{kind}.{side}", None)
            st.rerun()

st.subheader("Today's merges")
with ctx.tenant() as session:
    today = merges_of_day(session, practice_id, now=ctx.now())
if not today:
    st.caption("No merges today.")
for merged in today:
    with st.container(border=True, key=f"merge.day.{merged.id}"):
        st.markdown(f"**{merged.duplicate}** merged into **{merged.survivor}** ({merged.kind}, "
                    f"{fmt.time(merged.merged_at, zone)})")  # fmt: skip
        st.caption(", ".join(f"{what(merged.kind, t).lower()}: {fmt.number(n)}" for t, n in merged.moved.items())
                   or "Nothing referred to it.")  # fmt: skip
        if merged.undone_at is not None:
            st.caption(f"Undone at {fmt.time(merged.undone_at, zone)}.")
        elif merged.undo_refused:
            st.caption(f"Cannot be undone: {merged.undo_refused}")
        elif st.button("Undo", key=f"merge.undo.{merged.id}"):
            try:
                with ctx.tenant() as session:
                    undo_merge(
                        session, ctx.actor(), practice_id=practice_id, merge_id=merged.id, now=ctx.now()
                    )
            except (MergeError, NotPermitted, UpstreamRefused, UpstreamUnavailable) as exc:
                st.error(f"Not undone: {exc}")
            else:
                state["merge.flash"] = f"Merge undone: {merged.duplicate} is back with everything it had."
                st.rerun()
