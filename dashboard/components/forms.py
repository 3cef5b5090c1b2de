"""Emptying a form after a save, in a way the browser sees.

Deleting a widget's key from session state only makes the server forget the value: the browser keeps showing
what was typed and sends it back with the next action, so a saved note or reason reappears in the "empty"
form. A value assigned to the key before the widget is drawn is sent to the browser; the widget cannot be
assigned once drawn in a run, so the values wait in session state until the entry point applies them at the
start of the next run (``apply_pending``), before any page draws its widgets.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

_PENDING = "forms.empty_next_run"


def empty_next_run(values: Mapping[str, object]) -> None:
    """Set these widget keys to these (empty) values at the start of the next run."""
    pending = st.session_state.setdefault(_PENDING, {})
    pending.update(values)


def apply_pending() -> None:
    for key, value in st.session_state.pop(_PENDING, {}).items():
        st.session_state[key] = value
