"""The "Merge duplicates" page under AppTest: the vet of a1 finds two clients, sees what each has side by side,
merges the duplicate into the one that stays, sees what moved, and undoes it from today's list; choosing one client
twice is refused at the field; a receptionist is not offered the page."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.test_ws_app import ok as no_exception
from tests.dashboard.test_ws_app import texts
from tests.dashboard.test_ws_permissions_nav import offered
from tests.practice_world import RECEPTIONIST, click, sign_in

PAGE = "workspaces/merge.py"
VET = "vet-a1"  # the factories' veterinarian at a1


def ok(at) -> None:  # noqa: ANN001
    """No exception, and none caught by the app's own handler (which shows an error id instead)."""
    no_exception(at)
    assert not [e.value for e in at.error if "error id" in e.value]


def _duplicate(app_env) -> int:
    """A second card for the world's client of a1, owning the same dog, with a reminder of its own."""
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        client_id = session.execute(
            text("INSERT INTO client (practice_id, last_name, initials) VALUES (:p, 'Jansen-dubbel', 'J.') "
                 "RETURNING id"), {"p": a1.practice_id},
        ).scalar_one()  # fmt: skip
        session.execute(
            text("INSERT INTO client_patient (practice_id, client_id, patient_id) VALUES (:p, :c, :a)"),
            {"p": a1.practice_id, "c": client_id, "a": a1.patient_id},
        )
        session.execute(
            text("INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on) "
                 "VALUES (:p, :a, :c, 'vaccination', DATE '2027-03-01')"),
            {"p": a1.practice_id, "c": client_id, "a": a1.patient_id},
        )  # fmt: skip
    return client_id


def _pick(at, side: str, query: str, record_id: int) -> None:
    at.text_input(key=f"merge.q.client.{side}").input(query).run()
    at.selectbox(key=f"merge.pick.client.{side}").select(record_id).run()


def _deleted(app_env, client_id: int) -> tuple:
    with app_env.system() as session:
        return tuple(
            session.execute(
                text("SELECT deleted_at IS NOT NULL, merged_into_id FROM client WHERE id = :c"),
                {"c": client_id},
            ).one()
        )


def test_the_vet_merges_two_clients_sees_what_moved_and_undoes_it(app_env):
    a1 = app_env.world.practices["a1"]
    duplicate = _duplicate(app_env)
    at = sign_in(VET)
    at.switch_page(PAGE).run()
    ok(at)
    assert at.title[0].value == "Merge duplicates"
    assert "No merges today." in texts(at)
    _pick(at, "a", "Jansen-a1", a1.client_id)
    _pick(at, "b", "dubbel", duplicate)
    ok(at)
    side_by_side = at.dataframe[0].value
    assert list(side_by_side.columns) == ["What", "A: J. Jansen-a1", "B: J. Jansen-dubbel"]
    rows = dict(zip(side_by_side["What"], side_by_side["A: J. Jansen-a1"], strict=True))
    assert (rows["Animals"], rows["Appointments"], rows["Invoices"]) == ("1", "2", "1")
    assert at.button(key="merge.go").disabled  # not before the confirmation
    (confirm,) = at.checkbox
    assert "Everything of J. Jansen-dubbel moves to J. Jansen-a1" in confirm.label
    confirm.check().run()
    at.button(key="merge.go").click().run()
    ok(at)
    assert "J. Jansen-dubbel was merged into J. Jansen-a1: 1 row(s) moved." in at.success[0].value
    moved = at.dataframe[0].value  # its owner link was one the survivor had already
    assert moved.to_dict("list") == {"What": ["Reminders"], "Rows": ["1"]}
    assert _deleted(app_env, duplicate) == (True, a1.client_id)
    assert "**J. Jansen-dubbel** merged into **J. Jansen-a1**" in texts(at)
    click(at, "Undo")
    ok(at)
    assert "Merge undone: J. Jansen-dubbel is back" in at.success[0].value
    assert _deleted(app_env, duplicate) == (False, None)
    assert "Undone at" in texts(at)
    with app_env.system() as session:
        owners = session.scalars(
            text("SELECT client_id FROM client_patient WHERE patient_id = :a ORDER BY client_id"),
            {"a": a1.patient_id},
        ).all()
    assert owners == sorted([a1.client_id, duplicate])  # the removed owner link is back


def test_one_client_chosen_twice_is_refused_at_the_field(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(VET)
    at.switch_page(PAGE).run()
    _pick(at, "a", "Jansen", a1.client_id)
    _pick(at, "b", "Jansen", a1.client_id)
    at.checkbox[0].check().run()
    at.button(key="merge.go").click().run()
    ok(at)
    (error,) = at.columns[1].error
    assert error.value == "A client cannot be merged with itself: choose two different clients."
    assert _deleted(app_env, a1.client_id) == (False, None)


def test_the_page_is_offered_to_the_vet_not_to_the_receptionist(app_env):
    assert offered(sign_in(VET), PAGE)
    receptionist = sign_in(RECEPTIONIST)
    assert not offered(receptionist, PAGE)
