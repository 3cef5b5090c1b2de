"""Process-wide resources of the app: engines are created once per server process and never mutated."""

from __future__ import annotations

import streamlit as st

from vetconnect.runtime import Runtime
from vetconnect.settings import get_settings


@st.cache_resource(max_entries=4)
def _runtime_for(database_url: str | None, home: str) -> Runtime:
    # Keyed on where the database is, so a changed DATABASE_URL/VETCONNECT_HOME never reuses stale engines.
    runtime = Runtime(get_settings())
    _ = runtime.reachable_admin_url
    return runtime


def app_runtime() -> Runtime:
    settings = get_settings()
    return _runtime_for(settings.database_url, str(settings.home))
