"""Integration: where each practice × module stands with Animana (mode, last sync, the write-back queue, dead
letters, open conflicts), switching a module's mode after a confirmation that says what changes, and retrying
what Animana did not take."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from dashboard.components.cutover import cutover_section
from dashboard.components.writeback import MODE_MEANINGS, MODE_NAMES, STATUS_SPEC, duration, status_table
from warehouse.integration import dead_letters as letters
from warehouse.integration.errors import IntegrationError
from warehouse.integration.modes import set_mode
from warehouse.integration.record_titles import record_titles
from warehouse.integration.status import integration_status
from warehouse.integration.tables import MIRRORED, MODULE_LABELS
from warehouse.schema.tenancy import MODES, MODULES
from warehouse.security.permissions import INTEGRATION_MANAGE, NotPermitted

state = st.session_state
signed_in = ctx.user()
# Every practice of the switcher's choice where the user may manage the integration.
practice_ids = [p for p in ctx.context().practice_ids if INTEGRATION_MANAGE in signed_in.permissions_in([p])]
if not practice_ids:
    st.error(f"Your role at {ctx.here()} cannot manage the Animana integration.")
    st.stop()
ctx.breadcrumbs("Animana integration")
st.title("Animana integration")
if flash := state.pop("integ.flash", None):
    st.success(flash)
now = ctx.now()
with ctx.tenant() as session:
    statuses = integration_status(session, practice_ids)
    dead = letters.dead_letters(session, practice_ids)
    titles = {p: record_titles(session, p, [(d.table, d.row_id) for d in dead if d.practice_id == p])
              for p in practice_ids}  # fmt: skip

for practice_id in practice_ids:
    rows = [s for s in statuses if s.practice_id == practice_id]
    st.subheader(ctx.practice_name(practice_id))
    if rows and not rows[0].linked:
        st.caption("This practice is not linked to an Animana practice: changes wait until it is linked.")
    tables.show(
        status_table(rows), STATUS_SPEC, key=f"integ.status.{practice_id}", zone=ctx.zone(practice_id)
    )

# --- switching a module's mode ----------------------------------------------------------------------------------
st.subheader("Switch mode")
cols = st.columns(3)
if len(practice_ids) > 1:
    practice_id = cols[0].selectbox(
        "Practice", practice_ids, format_func=ctx.practice_name, key="integ.practice"
    )
else:
    practice_id = practice_ids[0]
    cols[0].text_input("Practice", ctx.practice_name(practice_id), disabled=True)
module = cols[1].selectbox("Module", MODULES, format_func=MODULE_LABELS.get, key="integ.module")
module_slot = cols[1].empty()
current = next(s for s in statuses if s.practice_id == practice_id and s.module == module)
# One widget per practice and module, so that choosing another module starts from that module's own mode.
mode = cols[2].selectbox("New mode", MODES, format_func=MODE_NAMES.get, key=f"integ.mode.{practice_id}.{module}",
                         index=MODES.index(current.mode))  # fmt: skip
mode_slot = cols[2].empty()
what = f"{MODULE_LABELS[module]} at {ctx.practice_name(practice_id)}"
if mode == current.mode:
    st.caption(f"{what} is in {MODE_NAMES[mode]} mode: {MODE_MEANINGS[mode]}.")
else:
    consequence = f"{what} switches to {MODE_NAMES[mode]} mode: {MODE_MEANINGS[mode]}."
    if mode == "native" and current.outbox_depth:
        consequence += (f" {current.outbox_depth} change(s) still wait for Animana; they stay visible here but "
                        "are no longer sent.")  # fmt: skip
    st.warning(consequence)
    confirmed = st.checkbox("I confirm this switch", key=f"integ.confirm.{practice_id}.{module}.{mode}")
    confirm_slot = st.empty()
    if st.button("Switch mode", type="primary", disabled=not confirmed, key="integ.switch"):
        try:
            with ctx.tenant() as session:
                set_mode(session, ctx.actor(), practice_id=practice_id, module=module, mode=mode,
                         confirmed=confirmed)  # fmt: skip
        except IntegrationError as exc:
            slot = {"module": module_slot, "mode": mode_slot}.get(exc.field, confirm_slot)
            slot.error(str(exc))
        except NotPermitted as exc:
            confirm_slot.error(str(exc))
        else:
            state["integ.flash"] = f"{what} is now in {MODE_NAMES[mode]} mode."
            st.rerun()

cutover_section(practice_ids, statuses)

# --- dead letters -----------------------------------------------------------------------------------------------
st.subheader("Not delivered")
if not dead:
    st.caption("No changes that Animana refused or that failed too often.")
else:
    st.caption("Changes that Animana refused or that failed too often. They stay here until they are retried; "
               "if Animana refused one, correct the record first.")  # fmt: skip
    header = st.columns([3, 4, 2, 2])
    for col, label in zip(header, ("Record", "Reason", "Age", ""), strict=True):
        col.markdown(f"**{label}**")
    for letter in dead:
        ref = (letter.table, letter.row_id)
        title = titles[letter.practice_id].get(ref, f"{MIRRORED[letter.table].label} {letter.row_id}")
        cols = st.columns([3, 4, 2, 2])
        cols[0].write(f"{title} ({letters.OPERATION_LABELS[letter.operation]})")
        cols[1].write(letter.reason)
        cols[2].write(duration((now - letter.created_at).total_seconds()))
        if cols[3].button("Retry", key=f"integ.retry.{letter.practice_id}.{letter.id}"):
            try:
                with ctx.tenant() as session:
                    letters.retry(session, ctx.actor(), letter.practice_id, [letter.id])
            except NotPermitted as exc:
                cols[3].error(str(exc))
            else:
                state["integ.flash"] = f"{title} is back in the queue for Animana."
                st.rerun()
