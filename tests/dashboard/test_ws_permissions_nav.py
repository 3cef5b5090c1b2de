"""The navigation and the page buttons follow the permissions at the practice chosen in the switcher: a vet at
practice a1 who is a receptionist at practice b1 gets the clinical workspaces at a1 only."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.factories import PASSWORD
from tests.practice_world import sign_in
from warehouse.security.accounts import add_user

CLINICAL_PAGES = ("workspaces/records.py", "workspaces/device_inbox.py")
DESK_PAGES = ("workspaces/hub.py", "workspaces/scheduling.py", "workspaces/waiting_room.py",
              "workspaces/client_card.py", "workspaces/billing.py")  # fmt: skip


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def offered(at: AppTest, page: str) -> bool:
    """Whether the navigation offers the page (AppTest refuses to switch to a page it does not register)."""
    try:
        at.switch_page(page)
    except ValueError as exc:
        if "Could not find a navigation page" not in str(exc):
            raise
        return False
    return True


@pytest.fixture
def vet_here_desk_there(app_env):  # noqa: ANN001, ANN201
    a1, b1 = app_env.world.practices["a1"], app_env.world.practices["b1"]
    with app_env.system() as session:
        add_user(session, username="vet-a1-desk-b1", full_name="Vet A1 Balie B1", password=PASSWORD,
                 memberships=[(a1.practice_id, "veterinarian"), (b1.practice_id, "receptionist")])  # fmt: skip
    return a1, b1, app_env.week.today_appointment


def test_the_navigation_and_buttons_follow_the_role_at_the_chosen_practice(vet_here_desk_there):
    a1, b1, today = vet_here_desk_there
    at = sign_in("vet-a1-desk-b1")
    ok(at)
    at.selectbox(key="practice_choice").set_value(a1.practice_id).run()
    ok(at)
    assert "veterinarian" in [c.value for c in at.sidebar.caption]
    assert all(offered(at, page) for page in CLINICAL_PAGES + DESK_PAGES)
    at.switch_page("workspaces/waiting_room.py").run()
    at.button(key=f"wr.in.{today['a1']}").click().run()
    ok(at)
    assert any(b.key == f"wr.start.{today['a1']}" for b in at.button)  # the vet may start a1's consult

    at.selectbox(key="practice_choice").set_value(b1.practice_id).run()
    ok(at)
    assert "receptionist" in [c.value for c in at.sidebar.caption]
    assert not any(offered(at, page) for page in CLINICAL_PAGES)
    assert all(offered(at, page) for page in DESK_PAGES)
    at.switch_page("workspaces/waiting_room.py").run()
    at.button(key=f"wr.in.{today['b1']}").click().run()  # the desk checks in at b1
    ok(at)
    assert not any(b.key == f"wr.in.{today['b1']}" for b in at.button)  # checked in: now waiting
    assert not any(b.key == f"wr.start.{today['b1']}" for b in at.button)  # but does not start b1's consult
