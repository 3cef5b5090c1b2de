"""System health: every check (database, Animana, sync lag, write-back, conflicts, device inbox, MLLP, backups)
with its status, value, threshold and detail, checked when the page opens and on request."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import health_sources
from warehouse.health import display
from warehouse.health.checks import Status
from warehouse.health.report import run_health
from warehouse.security.permissions import SYSTEM_HEALTH

if not ctx.may(SYSTEM_HEALTH):
    st.error(f"Your role at {ctx.here()} cannot see the system's health.")
    st.stop()
ctx.breadcrumbs("System health")
st.title("System health")

state = st.session_state
# The button is drawn on every run (an `or` after the first check would skip it when the page first opens).
check_again = st.button("Check again", key="health.refresh", icon=":material/refresh:")
if check_again or "health.report" not in state:
    state["health.report"] = run_health(health_sources())
report = state["health.report"]
summary = f"Overall: {report.status.label} (checked {display.checked_at(report, ctx.zone())})"
{Status.OK: st.success, Status.WARN: st.warning, Status.FAIL: st.error}[report.status](summary)
st.dataframe(display.rows(report), hide_index=True, use_container_width=True, key="health.checks")
