"""The device inbox page under AppTest: a vet finds the patient of an unmatched lab result by exact search and
the message is re-processed from its raw copy into that patient's record; other roles and practices."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.components.pages import pages_for
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import Clinic, ingest, messages, observations, vet_oru
from tests.factories import PASSWORD
from vetconnect.settings import get_settings
from warehouse.security.permissions import permissions_for
from warehouse.security.signin import SignedInUser, authenticate

pytestmark = pytest.mark.xdist_group("devices-db")

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGE = "workspaces/device_inbox.py"
UNKNOWN_CHIP = "528140000777777"


@pytest.fixture
def world_db(fresh_world_db, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # noqa: ANN001
    fresh_db = fresh_world_db
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    monkeypatch.delenv("VETCONNECT_DEMO", raising=False)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def _signed_in(db, username: str) -> SignedInUser:  # noqa: ANN001
    user = authenticate(db.admin_engine, username, PASSWORD)
    assert user is not None, f"{username} needs a second factor; build the user from its access context"
    return user


def _open(user: SignedInUser) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["user"] = user
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "title", "error", "success", "info", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def test_the_page_is_in_the_navigation_of_clinical_roles_and_managers_only():
    for role in ("veterinarian", "nurse", "practice_manager"):
        assert "device_inbox" in {p.key for p in pages_for(permissions_for({role}))}
    assert "device_inbox" not in {p.key for p in pages_for(permissions_for({"receptionist"}))}


def test_a_vet_matches_an_unmatched_result_to_a_patient_and_it_is_loaded(world_db):
    a1, b1 = world_db.world.practices["a1"], world_db.world.practices["b1"]
    clinic = Clinic(a1.practice_id)
    other = Clinic(b1.practice_id)
    unmatched = ingest(
        world_db, clinic, vet_oru("INBOX-1", chip=UNKNOWN_CHIP, owner="Onbekend^Piet"), "mllp:hm5"
    )
    assert unmatched.status == "inbox"
    ingest(world_db, other, vet_oru("INBOX-B", chip=UNKNOWN_CHIP, owner="Onbekend^Piet"), "mllp:b1")

    at = _open(_signed_in(world_db, "vet-a1"))
    shown = at.dataframe[0].value
    waiting = [m.id for m in messages(world_db, clinic) if m.status == "inbox"]
    assert unmatched.message_id in waiting
    assert sorted(shown["message"]) == sorted(waiting)  # a1's inbox only: b1's message is not listed
    row = list(shown["message"]).index(unmatched.message_id)
    assert shown["reason"][row] == "No matching patient"
    assert "no patient with chip 528140000777777" in shown["detail"][row]
    at.selectbox(key="dev_inbox.message").set_value(unmatched.message_id).run()

    # Exact search only: a partial name finds nothing; the full patient name finds a1's Bello.
    at.text_input(key="dev_inbox.query").input("Bello").run()
    assert "matches 'Bello' exactly" in _text(at)
    at.text_input(key="dev_inbox.query").input("Bello-a1").run()
    assert at.radio(key="dev_inbox.patient").value == a1.patient_id
    at.button(key="dev_inbox.resolve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Message #{unmatched.message_id}: 2 observations ingested for Bello-a1" in _text(at)
    assert all(unmatched.message_id not in list(df.value["message"]) for df in at.dataframe)

    stored = [m for m in messages(world_db, clinic) if m.id == unmatched.message_id][0]
    assert (stored.status, stored.patient_id, stored.observation_count) == ("resolved", a1.patient_id, 2)
    assert stored.resolved_by == at.session_state["user"].user_id
    assert {o.patient_id for o in observations(world_db, clinic)} == {a1.patient_id}
    assert {m.status for m in messages(world_db, other)} == {"inbox"}  # b1's stay where they were


def test_the_page_shows_what_was_judged_a_duplicate_and_what_reused_a_control_id(world_db):
    a1 = world_db.world.practices["a1"]
    clinic = Clinic(a1.practice_id)
    first = ingest(world_db, clinic, vet_oru("SAME-1", wbc="18.2"), "mllp:hm5")
    resent = ingest(world_db, clinic, vet_oru("SAME-1", wbc="18.2"), "mllp:hm5")
    other = ingest(world_db, clinic, vet_oru("SAME-1", wbc="7.1"), "mllp:hm5")  # another result, same id
    assert (resent.status, other.status) == ("duplicate", first.status)

    at = _open(_signed_in(world_db, "vet-a1"))
    judged = next(df.value for df in at.dataframe if "Judged" in df.value.columns)
    verdicts = dict(zip(judged["Message"], judged["Judged"], strict=True))
    assert verdicts == {
        resent.message_id: f"Duplicate of message {first.message_id}: same content, not loaded again",
        other.message_id: f"New message, loaded: control id also used by message {first.message_id}",
    }
    assert set(judged["Practice"]) == {"Praktijk a1"}
    assert all(re.fullmatch(r"\d{1,2} [a-z]{3} \d{4} \d{2}:\d{2}", r) for r in judged["Received"])
