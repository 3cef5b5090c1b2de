"""The scheduling page over several actions in a row, as a browser drives it (AppTest).

A browser keeps showing a widget's value until the server sends it another one, and sends what it shows with
every later action. ``Browser`` does the same for the booking form's widgets, which AppTest by itself does not:
its widgets take their values from the server's state, so a value the server only forgot would not come back.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from tests.factories import TZ
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.kernel import formatting
from warehouse.schema.scheduling import Appointment


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


class Browser:
    """What the browser shows in the form's widgets (by key): the value the server last sent, else the last
    value the user chose; re-sent with the next action."""

    KEYS = ("sched.patient", "sched.patient_query", "sched.reason")

    def __init__(self, at: AppTest) -> None:
        self.at = at
        self.shown: dict[str, str | None] = {}

    def choose_patient(self, patient_id: int) -> None:
        box = self.at.selectbox(key="sched.patient").set_value(patient_id)
        self.shown["sched.patient"] = box.options[box.index]

    def type(self, key: str, value: str) -> None:
        self.at.text_input(key=key).input(value)
        self.shown[key] = value

    def after_run(self) -> None:
        """Take what the server sent; re-send what it did not replace (as the browser's widget state)."""
        for key in self.KEYS:
            widget = next((w for w in (*self.at.selectbox, *self.at.text_input) if w.key == key), None)
            if widget is None:
                continue
            if widget.proto.set_value:
                self.shown[key] = (
                    widget.proto.value if widget.type == "text_input" else (widget.proto.raw_value or None)
                )
            label = self.shown.get(key)
            if widget.type == "selectbox" and label is not None:
                if label not in widget.options:
                    widget.options.append(label)  # the browser still lists what it shows
                widget.set_value(label)
            elif widget.type == "text_input" and label is not None:
                widget.input(label)


def test_four_bookings_in_a_row_each_clear_the_form_and_the_next_action_works(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.switch_page("workspaces/scheduling.py").run()
    ok(at)
    browser = Browser(at)
    tomorrow = dt.datetime.now(TZ).date() + dt.timedelta(days=1)
    for n, hour in enumerate((10, 11, 13, 14), start=1):
        browser.type("sched.patient_query", "Bello")
        at.run()
        browser.after_run()
        ok(at)
        browser.choose_patient(a1.patient_id)
        at.run()
        browser.after_run()
        at.selectbox(key="sched.resource").set_value(a1.resource_id)
        at.date_input(key="sched.book_day").set_value(tomorrow)
        at.time_input(key="sched.time").set_value(dt.time(hour, 0))
        browser.type("sched.reason", f"Controle {n}")
        click(at, "Book")
        browser.after_run()
        ok(at)
        assert "Booked Bello-a1 on" in at.success[0].value and f"{hour}:00" in at.success[0].value
        # The next action (here: switching the agenda to the week view) works.
        at.segmented_control(key="sched.view").set_value("Week").run()
        browser.after_run()
        ok(at)
        at.segmented_control(key="sched.view").set_value("Day").run()
        browser.after_run()
        ok(at)
        # The form is empty again (in the browser too): no patient, no search, no reason.
        assert at.selectbox(key="sched.patient").value is None
        assert at.text_input(key="sched.patient_query").value == ""
        assert at.text_input(key="sched.reason").value == ""
    with app_env.system() as session:
        reasons = session.scalars(
            select(Appointment.reason)
            .where(Appointment.practice_id == a1.practice_id, Appointment.reason.like("Controle %"))
            .order_by(Appointment.starts_at)
        ).all()
    assert reasons == ["Controle 1", "Controle 2", "Controle 3", "Controle 4"]


def test_a_double_booking_names_the_vet_and_local_time_and_free_slots_come_in_time_order(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.switch_page("workspaces/scheduling.py").run()
    tomorrow = dt.datetime.now(TZ).date() + dt.timedelta(days=1)
    for minute in (0, 10):  # 11:00 is booked, then 11:10 runs into it
        at.text_input(key="sched.patient_query").input("Bello").run()
        at.selectbox(key="sched.patient").set_value(a1.patient_id).run()
        at.selectbox(key="sched.resource").set_value(a1.resource_id)
        at.date_input(key="sched.book_day").set_value(tomorrow)
        at.time_input(key="sched.time").set_value(dt.time(11, minute))
        click(at, "Book")
        ok(at)
    message = at.error[0].value
    day = formatting.date(dt.datetime.combine(tomorrow, dt.time(11), TZ))
    assert f"Dierenarts a1 is already booked from {day} 11:00 to 11:20" in message, message
    assert "resource " not in message
    starts = [b.key.rsplit("-", 1)[1] for b in at.button if b.key and b.key.startswith("slot-")]
    assert len(starts) > 1 and starts == sorted(starts)
