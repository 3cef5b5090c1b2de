"""Every action the next-action model can suggest opens a workspace that exists in the navigation."""

from __future__ import annotations

from dashboard.components.pages import OPENS
from dashboard.components.suggestions import ACTION_OPENS
from models.serving import ACTIONS


def test_every_suggested_action_has_a_workspace_to_open():
    actions = {action for action, _ in ACTIONS.values()}
    assert actions <= set(ACTION_OPENS)
    assert set(ACTION_OPENS.values()) <= set(OPENS)
