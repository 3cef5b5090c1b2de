"""The Integration page's cut-over: choose a module, rehearse it (dry run) or cut it over with each step shown in
``st.status``; differences are listed in a table and can be accepted with a reason (`warehouse.integration.cutover`).
The Animana side comes from the runtime's port: the dashboard never imports the connector."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from dashboard.runtime import app_runtime
from warehouse.integration.cutover import (
    Confirmation,
    CutoverResult,
    cut_over,
    differences_frame,
    reconciliation_frame,
)
from warehouse.integration.errors import IntegrationError
from warehouse.integration.status import ModuleStatus
from warehouse.integration.tables import MODULE_LABELS
from warehouse.security.permissions import NotPermitted

RECONCILIATION_SPEC: tables.Spec = {
    "resource": ("Resource", "text"),
    "api": ("In Animana", "count"),
    "mirrored": ("In VetConnect", "count"),
    "equal": ("Equal", "count"),
    "missing": ("Missing here", "count"),
    "extra": ("Not in Animana", "count"),
    "different": ("Different", "count"),
}
DIFFERENCES_SPEC: tables.Spec = {
    "resource": ("Resource", "text"),
    "animana_id": ("Animana id", "text"),
    "kind": ("Difference", "text"),
    "fields": ("Fields", "text"),
    "note": ("Note", "text"),
}


class _StatusSteps:
    """`CutoverProgress` written into an ``st.status`` box: a line per step, a bar while reconciling."""

    def __init__(self, box: st.delta_generator.DeltaGenerator) -> None:
        self._box = box
        self._bar: st.delta_generator.DeltaGenerator | None = None
        self._total = 0
        self._done = 0

    def started(self, step: str, label: str, total: int | None = None) -> None:
        self._box.update(label=f"{label} …")
        self._total, self._done = total or 0, 0
        self._bar = self._box.progress(0.0) if total else None

    def advance(self, step: str, done: int) -> None:
        self._done += done
        if self._bar is not None and self._total:
            self._bar.progress(min(self._done / self._total, 1.0))

    def finished(self, step: str, summary: str) -> None:
        if self._bar is not None:
            self._bar.empty()
        self._box.write(f"{step.capitalize()}: {summary}")


def _run(practice_id: int, module: str, *, dry_run: bool, reason: str | None = None) -> None:
    key = f"cutover.result.{practice_id}.{module}"
    title = "Dry run" if dry_run else "Cut-over"
    with st.status(f"{title} of {MODULE_LABELS[module]} …", expanded=True) as box:
        try:
            runtime = app_runtime()
            result = cut_over(
                runtime.app_engine, runtime.cutover_port, ctx.actor(), practice_id=practice_id, module=module,
                master_key=runtime.master_key(), dry_run=dry_run,
                confirmation=Confirmation(reason) if reason is not None else None, progress=_StatusSteps(box),
            )  # fmt: skip
        except (IntegrationError, NotPermitted) as exc:
            box.update(label=f"{title} refused", state="error")
            st.session_state[key] = str(exc)
            return
        state = "complete" if result.outcome != "stopped" else "error"
        box.update(label=f"{title}: {_outcome(result)}", state=state, expanded=False)
    st.session_state[key] = result
    if result.outcome == "native":  # the statuses above and the module list change: render them anew
        st.session_state["cutover.done"] = (result, practice_id)
        st.rerun()


def _outcome(result: CutoverResult) -> str:
    if result.outcome == "native":
        return f"{MODULE_LABELS[result.module]} is native; Animana is no longer read for it"
    found = f"{result.difference_count} difference(s)" if result.difference_count else "equal to Animana"
    return (
        f"nothing was sent or switched, {found}" if result.outcome == "rehearsed" else f"stopped on {found}"
    )


def cutover_section(practice_ids: list[int], statuses: list[ModuleStatus]) -> None:
    st.subheader("Cut over to native")
    st.caption(
        "Sends the changes still waiting for Animana, syncs a last time, compares every record with Animana and "
        "then stops reading Animana for the module. The Animana ids stay with the records as history."
    )
    if done := st.session_state.pop("cutover.done", None):
        _show(*done)
    linked = [p for p in practice_ids if any(s.linked for s in statuses if s.practice_id == p)]
    if not linked:
        st.caption("No practice here is linked to Animana: there is nothing to cut over.")
        return
    cols = st.columns(2)
    if len(linked) > 1:
        practice_id = cols[0].selectbox(
            "Practice", linked, format_func=ctx.practice_name, key="cutover.practice"
        )
    else:
        practice_id = linked[0]
        cols[0].text_input(
            "Practice", ctx.practice_name(practice_id), disabled=True, key="cutover.practice_name"
        )
    open_modules = [s.module for s in statuses if s.practice_id == practice_id and s.mode != "native"]
    if not open_modules:
        st.caption(f"Every module at {ctx.practice_name(practice_id)} is native.")
        return
    module = cols[1].selectbox(
        "Module to cut over", open_modules, format_func=MODULE_LABELS.get, key="cutover.module"
    )
    buttons = st.columns([1, 1, 4])
    if buttons[0].button("Dry run", key="cutover.dry"):
        _run(practice_id, module, dry_run=True)
    if buttons[1].button("Cut over", type="primary", key="cutover.go"):
        _run(practice_id, module, dry_run=False)
    found = st.session_state.get(f"cutover.result.{practice_id}.{module}")
    if isinstance(found, str):
        st.error(found)
    elif isinstance(found, CutoverResult):
        _show(found, practice_id)


def _show(result: CutoverResult, practice_id: int) -> None:
    if result.outcome == "native":
        st.success(_outcome(result) + (f" (differences accepted: {result.reason})" if result.reason else ""))
    for blocker in result.blockers:
        st.warning(f"A cut-over would stop on: {blocker}")
    zone = ctx.zone(practice_id)
    tables.show(reconciliation_frame(result), RECONCILIATION_SPEC, key="cutover.reconciliation", zone=zone)
    if not result.differences:
        return
    st.markdown(f"**Differences: {result.difference_count}**")
    tables.show(differences_frame(result), DIFFERENCES_SPEC, key="cutover.differences", zone=zone)
    if result.outcome != "stopped":
        return
    st.warning(
        "The cut-over stopped on these differences. Fix them and run it again, or accept them with a reason."
    )
    reason = st.text_input("Reason for accepting the differences", key="cutover.reason")
    reason_slot = st.empty()
    if st.button("Accept the differences and cut over", key="cutover.accept"):
        if not reason.strip():
            reason_slot.error("Say why the differences are accepted.")
        else:
            _run(practice_id, result.module, dry_run=False, reason=reason)
