"""The hub: the signed-in user's practices at a glance (search and today's work arrive with the workspaces)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard.runtime import app_runtime
from warehouse.hub import practice_overview
from warehouse.tenancy import tenant_session

user = st.session_state["user"]
today = dt.date.today()
with tenant_session(app_runtime().app_engine, user.context) as session:
    overview = practice_overview(session, today, ZoneInfo("Europe/Amsterdam"))

st.title(f"Goedendag, {user.full_name.split()[0]}")
st.caption(f"{today:%A %d %B %Y} · {overview.height} practice(s)")
cols = st.columns(3)
cols[0].metric("Patients", f"{overview['patients'].sum():,}")
cols[1].metric("Clients", f"{overview['clients'].sum():,}")
cols[2].metric("Appointments today", f"{overview['appointments_today'].sum():,}")
st.dataframe(overview.drop("practice_id"), hide_index=True, use_container_width=True)
