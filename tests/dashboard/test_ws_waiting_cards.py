"""A waiting-room card opens its patient's record, or for who may not read records the client card (issue 13).
The test asserts what the user sees."""

from __future__ import annotations

from tests.practice_world import RECEPTIONIST, sign_in


def ok(at) -> None:  # noqa: ANN001
    assert not at.exception, [e.value for e in at.exception]


def test_a_waiting_room_card_opens_the_patient_record_or_for_reception_the_client_card(app_env):
    appointment_id = app_env.week.today_appointment["a1"]
    vet = sign_in("vet-a1")
    vet.switch_page("workspaces/waiting_room.py").run()
    ok(vet)
    button = vet.button(key=f"wr.open.{appointment_id}")
    assert button.label == "Open record"
    button.click().run()
    ok(vet)
    assert vet.title[0].value == "Bello-a1 · dog"
    assert any("Patient record › Praktijk a1 › Bello-a1" in c.value for c in vet.caption)
    # Reception may not read records: the card opens the owner's client card instead.
    desk = sign_in(RECEPTIONIST)
    desk.switch_page("workspaces/waiting_room.py").run()
    button = desk.button(key=f"wr.open.{appointment_id}")
    assert button.label == "Client card"
    button.click().run()
    ok(desk)
    assert "Jansen-a1" in desk.title[0].value
