"""Conflicts with Animana: fields VetConnect and Animana both changed that no rule could decide. Per conflict the
record, per field both values side by side; the manager picks a side per field (or one side for all) and
resolves: the chosen values are saved here and, unless the module is native, written back to Animana."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.writeback import SIDE_NAMES, readable
from dashboard.runtime import app_runtime
from warehouse.integration import conflicts as queue
from warehouse.integration.errors import IntegrationError
from warehouse.integration.record_titles import record_titles
from warehouse.integration.tables import MODULE_LABELS
from warehouse.kernel import formatting as fmt
from warehouse.security.permissions import INTEGRATION_MANAGE, NotPermitted

state = st.session_state
signed_in = ctx.user()
practice_ids = [p for p in ctx.context().practice_ids if INTEGRATION_MANAGE in signed_in.permissions_in([p])]
if not practice_ids:
    st.error(f"Your role at {ctx.here()} cannot resolve conflicts with Animana.")
    st.stop()
ctx.breadcrumbs("Conflicts with Animana")
st.title("Conflicts with Animana")
if flash := state.pop("conf.flash", None):
    st.success(flash)
zones = {p: ctx.zone(p) for p in practice_ids}
with ctx.tenant() as session:
    found = queue.open_conflicts(session, practice_ids, master_key=app_runtime().master_key())
    titles = {p: record_titles(session, p, [(c.table, c.row_id) for c in found if c.practice_id == p],
                               zone=zones[p]) for p in practice_ids}  # fmt: skip
if not found:
    st.info("No open conflicts: VetConnect and Animana agree on everything.")
    st.stop()
st.caption(f"{len(found)} open conflict(s), oldest first. Choose per field which value stays; the choice is "
           "saved here and written to Animana.")  # fmt: skip


def _choose_all(conflict: queue.Conflict, side: str) -> None:
    # A callback runs before the next run draws the radios, so their state may still be assigned here.
    for field in conflict.fields:
        state[f"conf.{conflict.id}.{field.column}"] = side


for conflict in found:
    zone = zones[conflict.practice_id]
    title = titles[conflict.practice_id].get((conflict.table, conflict.row_id), conflict.what)
    with st.container(border=True, key=f"conf.box.{conflict.id}"):
        st.markdown(f"**{title}**")
        st.caption(f"{ctx.practice_name(conflict.practice_id)} · {MODULE_LABELS[conflict.module]} · detected "
                   f"{fmt.date_time(conflict.detected_at, zone)}")  # fmt: skip
        header = st.columns([2, 3, 3, 3])
        for col, label in zip(header, ("Field", "VetConnect", "Animana", "Choice"), strict=True):
            col.markdown(f"**{label}**")
        for field in conflict.fields:
            cols = st.columns([2, 3, 3, 3])
            cols[0].write(field.label.capitalize())
            cols[1].write(readable(field.column, field.local, zone))
            cols[2].write(readable(field.column, field.animana, zone))
            cols[3].radio(f"Choice for {field.label}", list(SIDE_NAMES), format_func=SIDE_NAMES.get, index=None,
                          horizontal=True, label_visibility="collapsed", key=f"conf.{conflict.id}.{field.column}")  # fmt: skip
        buttons = st.columns([2, 2, 2, 5])
        buttons[0].button("All VetConnect", key=f"conf.local.{conflict.id}", on_click=_choose_all,
                          args=(conflict, "local"))  # fmt: skip
        buttons[1].button("All Animana", key=f"conf.animana.{conflict.id}", on_click=_choose_all,
                          args=(conflict, "animana"))  # fmt: skip
        outcome = st.empty()
        if buttons[2].button("Resolve", type="primary", key=f"conf.resolve.{conflict.id}"):
            choice = {f.column: state.get(f"conf.{conflict.id}.{f.column}") for f in conflict.fields}
            try:
                with ctx.tenant() as session:
                    queue.resolve(session, ctx.actor(), conflict.id, {c: s for c, s in choice.items() if s})
            except (IntegrationError, NotPermitted) as exc:
                outcome.error(str(exc))
            else:
                kept = ", ".join(f"{f.label}: {SIDE_NAMES[choice[f.column]]}" for f in conflict.fields)
                state["conf.flash"] = f"Conflict about {title} resolved ({kept})."
                st.rerun()
