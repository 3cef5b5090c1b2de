"""The practice settings page's labs and analysers under AppTest: the practice manager sees the practice's lab,
adds one (a host with a space and a test code listed twice are refused at their fields, nothing saved), finds it
in the list and offered on the order form, switches the old one off; a receptionist gets no form."""

from __future__ import annotations

import polars as pl
from sqlalchemy import select

from tests.dashboard.test_ws_app import ok
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.records import lab_orders
from warehouse.schema.clinical import LabDestination
from warehouse.security.accounts import access_context_for_user, add_user

MANAGER = "manager-a1"
PAGE = "workspaces/practice_settings.py"
KEY = "settings.labs"


def errors_at(at, key):
    """The errors shown in the slot right after the widget ``key`` (in its form or form column)."""

    def walk(node):
        children = list(getattr(node, "children", {}).values())
        for index, child in enumerate(children):
            if getattr(child, "key", None) == key:
                slot = children[index + 1]
                return [e.value for e in getattr(slot, "children", {}).values()] or [
                    getattr(slot, "value", "")
                ]
            if (found := walk(child)) is not None:
                return found
        return None

    return [e for e in walk(at._tree) if e]


def _labs(at) -> pl.DataFrame:
    return pl.from_pandas(next(df.value for df in at.dataframe if "Host:port" in df.value.columns))


def _submit(at):
    next(b for b in at.button if (b.key or "").startswith(f"FormSubmitter:{KEY}.add")).click().run()
    ok(at)


def test_the_manager_adds_a_lab_and_switches_the_old_one_off(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        add_user(session, username=MANAGER, full_name="Manager A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
    at = sign_in(MANAGER)
    at.switch_page(PAGE).run()
    ok(at)
    assert [s.value for s in at.subheader][-1] == "Labs and analysers"
    labs = _labs(at)
    assert labs.row(0, named=True) == {"Name": "Lab", "Host:port": "127.0.0.1:2576", "Message type": "OML^O21",
                                       "Receiving application": "", "Receiving facility": "", "ACK timeout (s)": 10,
                                       "Tests offered": "CBC Haematology", "Active": "yes"}  # fmt: skip

    at.text_input(key=f"{KEY}.name").input("IDEXX Hoofddorp")
    at.text_input(key=f"{KEY}.host").input("lab idexx.nl")
    at.number_input(key=f"{KEY}.port").set_value(2575)
    at.selectbox(key=f"{KEY}.message_type").set_value("ORM^O01")
    at.text_input(key=f"{KEY}.receiving_application").input("IDEXX")
    at.text_area(key=f"{KEY}.tests").input("T4 Total T4\nCBC Haematology")
    _submit(at)
    assert errors_at(at, f"{KEY}.host") == [
        "lab idexx.nl is not a host name (lab.example.nl) or an IP address."
    ]
    assert not errors_at(at, f"{KEY}.name")
    at.text_input(key=f"{KEY}.host").input("lab.idexx.nl")
    at.text_area(key=f"{KEY}.tests").input("T4 Total T4\nCBC Haematology\ncbc Bloedbeeld")
    _submit(at)
    assert errors_at(at, f"{KEY}.tests") == ["Line 3: cbc is listed already."]
    assert not errors_at(at, f"{KEY}.host")
    assert len(_labs(at)) == 1  # nothing saved
    at.text_area(key=f"{KEY}.tests").input("T4 Total T4\nCBC Haematology")
    _submit(at)
    assert "Lab IDEXX Hoofddorp added" in at.success[0].value
    assert at.text_input(key=f"{KEY}.name").value == ""  # the form is empty for the next lab
    added = _labs(at).filter(Name="IDEXX Hoofddorp").row(0, named=True)
    assert (added["Host:port"], added["Message type"], added["Receiving application"], added["Tests offered"],
            added["Active"]) == ("lab.idexx.nl:2575", "ORM^O01", "IDEXX", "T4 Total T4; CBC Haematology", "yes")  # fmt: skip

    with app_env.system() as session:
        old_lab = session.scalar(select(LabDestination.id).where(LabDestination.practice_id == a1.practice_id,
                                                                 LabDestination.name == "Lab"))  # fmt: skip
    at.selectbox(key=f"{KEY}.off").set_value(old_lab)
    click(at, "Switch off")
    ok(at)
    assert "Lab Lab switched off" in at.success[0].value
    assert _labs(at).filter(Name="Lab")["Active"].to_list() == ["no"]
    assert at.selectbox(key=f"{KEY}.off").options == ["IDEXX Hoofddorp"]
    with app_env.system() as session:
        context = access_context_for_user(session, a1.user_id)
    with app_env.as_app(context) as session:
        assert [d.name for d in lab_orders.destinations(session, a1.practice_id)] == ["IDEXX Hoofddorp"]


def test_a_receptionist_gets_no_lab_form(app_env):
    at = sign_in(RECEPTIONIST)
    ok(at)
    assert not offered(at, PAGE)  # the page (and with it the form) is the manager's
    assert not [w for w in at.text_input if (w.key or "").startswith(KEY)]
