"""Process-wide resources of the app: engines are created once per server process and never mutated."""

from __future__ import annotations

import gc
import importlib
import logging
import threading
from pathlib import Path

import streamlit as st

from vetconnect.runtime import Runtime, SetupError
from vetconnect.settings import MissingSetting, get_settings
from warehouse.health.report import HealthSources


@st.cache_resource(max_entries=4)
def _runtime_for(database_url: str | None, home: str) -> Runtime:
    # Keyed on where the database is, so a changed DATABASE_URL/VETCONNECT_HOME never reuses stale engines.
    runtime = Runtime(get_settings())
    _ = runtime.reachable_admin_url
    return runtime


def app_runtime() -> Runtime:
    settings = get_settings()
    return _runtime_for(settings.database_url, str(settings.home))


def master_key_if_set() -> bytes | None:
    """The master key, or None when none is configured: for work that can be done in part without it (the
    device inbox loads lab results; DICOM files wait until they can be stored encrypted)."""
    try:
        return app_runtime().master_key()
    except MissingSetting:
        return None


def health_sources() -> HealthSources:
    """What a health run reads (the page, ``/health``, ``/metrics``); a database that cannot be reached at all is
    the database check's failure, not an error page."""
    try:
        return app_runtime().health_sources()
    except SetupError as exc:
        settings = get_settings()
        return HealthSources(None, settings.home.resolve() / "backups", database_error=str(exc))


def metrics_token() -> str | None:
    """The bearer token `/metrics` and `/health`'s detail ask for (``VETCONNECT_METRICS_TOKEN``), None if unset."""
    token = get_settings().metrics_token
    return token.get_secret_value() if token is not None and token.get_secret_value() else None


# What the workspaces import on their first render: scikit-learn, scipy, pandas and skops (the suggestions and
# the no-show risk) and plotly (agenda and dashboards) take seconds to import, which the first user after a
# server start used to wait for on their first click.
_WARM_MODULES = (
    "models.serving",
    "dashboard.components.suggestions",
    "dashboard.components.agenda",
    "plotly.express",
    "warehouse.billing.pdf",
)
_log = logging.getLogger(__name__)


def _warm_up() -> None:
    for name in _WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # a page that needs it reports the error itself, with its id
            _log.exception("warm-up import of %s failed", name)
    # Everything imported so far lives as long as the process: keep it out of every later garbage collection
    # (a full collection walks ~300,000 objects otherwise); collect first so that no garbage is frozen.
    gc.collect()
    gc.freeze()


@st.cache_resource
def start_warm_up() -> threading.Thread:
    """Import the workspaces' heavy libraries in the background, once per server process."""
    thread = threading.Thread(target=_warm_up, name="vetconnect-warm-up", daemon=True)
    thread.start()
    return thread


def demo_mailbox() -> tuple[Path, str] | None:
    """In demo mode, where the demo's local mail server keeps its mails and the SMS simulator's address (the
    Messages page shows what they received); None anywhere else, where messages reach real owners."""
    settings = get_settings()
    return (settings.mailbox, settings.sms_gateway_url) if settings.demo else None
