"""The users and audit-trail pages under AppTest: the manager of a1 adds a user (a bad user name is refused at
its field), the invited user sets a password through the link and signs in; the manager grants a role and
deactivates an account; the audit trail lists those actions with the manager's session and shows a tampered
entry. A receptionist is offered neither page."""

from __future__ import annotations

from sqlalchemy import select, text
from streamlit.testing.v1 import AppTest

from tests.dashboard.test_ws_app import ok, texts
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD
from tests.practice_world import APP, RECEPTIONIST, click, sign_in
from warehouse.schema.tenancy import AppUser, Membership
from warehouse.security.accounts import add_user
from warehouse.security.signin import Rejected, SignedInUser, begin_sign_in

MANAGER = "manager-a1"
USERS, AUDIT = "workspaces/users.py", "workspaces/audit.py"
NEW_PASSWORD = "Paard-Staart-Kliniek-42"


def _manager(app_env) -> None:  # noqa: ANN001
    with app_env.system() as session:
        add_user(session, username=MANAGER, full_name="Manager A1", password=PASSWORD,
                 memberships=[(app_env.world.practices["a1"].practice_id, "practice_manager")])  # fmt: skip


def _frame(at, column: str):  # noqa: ANN001, ANN202
    """The table that has this column (AppTest does not find a dataframe by its key)."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _column_with(at, key):  # noqa: ANN001, ANN202
    return next(c for c in at.columns if any(w.key == key for w in c.text_input))


def test_manager_adds_a_user_who_sets_a_password_through_the_link(app_env):
    _manager(app_env)
    at = sign_in(MANAGER)
    at.switch_page(USERS).run()
    ok(at)
    table = _frame(at, "User name")
    assert set(table["User name"]) == {"vet-a1", MANAGER, RECEPTIONIST}
    at.text_input(key="users.add.0.username").input("Anna de Vries")
    at.text_input(key="users.add.0.full_name").input("Anna de Vries")
    click(at, "Add user")
    ok(at)
    errors = [e.value for e in _column_with(at, "users.add.0.username").error]
    assert len(errors) == 1 and "lower-case letters" in errors[0]
    at.text_input(key="users.add.0.username").input("anna")
    at.selectbox(key="users.add.0.role").set_value("nurse")
    click(at, "Add user")
    ok(at)
    assert "anna added as nurse" in at.success[0].value
    link = at.code[0].value
    assert "/?invite=" in link and "shown only now" in at.info[0].value
    assert "Invited" in list(_frame(at, "User name")["Status"])
    assert at.text_input(key="users.add.1.username").value == ""  # a fresh form for the next one
    # The invited user opens the link: the set-password form, then the sign-in form says what to do.
    invited = AppTest.from_file(APP, default_timeout=60)
    invited.query_params["invite"] = link.split("invite=")[1]
    invited.run()
    ok(invited)
    assert "anna" in texts(invited)
    invited.text_input(key="invite.password").input(NEW_PASSWORD)
    invited.text_input(key="invite.repeat").input(NEW_PASSWORD + "x")
    click(invited, "Set password")
    assert any("differ" in e.value for e in invited.error)
    invited.text_input(key="invite.repeat").input(NEW_PASSWORD)
    click(invited, "Set password")
    ok(invited)
    assert "Your password is set. Sign in as anna." in texts(invited)
    assert isinstance(begin_sign_in(app_env.admin_engine, "anna", NEW_PASSWORD), SignedInUser)


def test_manager_grants_a_role_and_deactivates_then_reads_it_in_the_audit_trail(app_env):
    _manager(app_env)
    a1 = app_env.world.practices["a1"]
    at = sign_in(MANAGER)
    at.switch_page(USERS).run()
    ok(at)
    at.selectbox(key="users.chosen").set_value(a1.user_id).run()
    at.selectbox(key="users.grant.role").set_value("nurse").run()
    at.button(key="users.grant").click().run()
    ok(at)
    assert "Vet a1 is now nurse" in at.success[0].value
    at.button(key="users.deactivate").click().run()
    ok(at)
    assert "Vet a1 is deactivated" in at.success[0].value
    table = _frame(at, "User name")
    row = table[table["User name"] == "vet-a1"].iloc[0]
    assert row["Status"] == "Deactivated" and "Nurse (Praktijk a1)" in row["Roles"]
    assert isinstance(begin_sign_in(app_env.admin_engine, "vet-a1", PASSWORD), Rejected)
    with app_env.system() as session:
        assert not session.get(AppUser, a1.user_id).is_active
        assert session.scalar(select(Membership.role).where(Membership.user_id == a1.user_id,
                                                            Membership.role == "nurse")) == "nurse"  # fmt: skip

    at.switch_page(AUDIT).run()
    ok(at)
    assert "Chain verified" in at.success[0].value
    at.selectbox(key="audit.f.user").set_value(at.session_state["user"].user_id)
    at.selectbox(key="audit.f.entity").set_value("app_user")
    click(at, "Show entries")
    ok(at)
    entries = _frame(at, "Action")
    assert list(entries["Action"]) == ["deactivate", "grant role"]
    assert set(entries["User"]) == {"Manager A1"}
    assert set(entries["Session"]) == {str(at.session_state["user"].session_id)}
    assert set(entries["Numbers"]) == {str(a1.user_id)}
    # Someone alters an entry behind the application's back: the page says which one.
    seq = int(entries["Entry"].iloc[0])
    with app_env.admin_engine.begin() as conn:
        conn.execute(text("""UPDATE audit_log SET detail = '{"x": 1}' WHERE practice_id = :p AND seq = :s"""),
                     {"p": a1.practice_id, "s": seq})  # fmt: skip
    at.button(key="audit.verify").click().run()
    ok(at)
    assert "does not verify: 1 problem(s)" in at.error[0].value
    problems = _frame(at, "Problem")
    assert list(problems["Entry"]) == [seq] and list(problems["Problem"]) == [
        "entry was altered after it was written"
    ]


def test_a_receptionist_is_offered_neither_page(app_env):
    at = sign_in(RECEPTIONIST)
    ok(at)
    assert not offered(at, USERS) and not offered(at, AUDIT)
