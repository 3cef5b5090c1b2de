"""The Integration and Conflicts pages under AppTest, on the real triggers: the manager of a1 reads the write-back
queue, a dead letter and a conflict in the status table after local writes (and an Animana change settled against
them), retries the dead letter, switches the agenda to hybrid after confirming, resolves a conflict field by field;
the agenda and the client card mark the records not yet in step with Animana; a receptionist gets neither page."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import MASTER_KEY, Database
from tests.dashboard.test_ws_app import texts
from tests.dashboard.test_ws_permissions_nav import offered, ok
from tests.factories import PASSWORD, PracticeRows
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.integration.capture import writing_as
from warehouse.integration.settle import settle
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.tenancy import AccessContext
from warehouse.security.accounts import add_user

MANAGER = "manager-a1"
INTEGRATION = "workspaces/integration.py"
CONFLICTS = "workspaces/conflicts.py"


def in_step_with_animana(db: Database) -> None:
    """Start from a world Animana agrees with, its practices linked to Animana practices: the factories' own
    writes were captured like any local write."""
    with db.system() as session:
        session.execute(text("UPDATE tenant SET animana_practice_id = 'AN-' || code WHERE kind = 'practice'"))
        session.execute(text("DELETE FROM writeback_outbox; DELETE FROM writeback_conflict; "
                             "DELETE FROM writeback_incoming"))  # fmt: skip
        writing_as(session, "writeback")
        for table in MIRRORED:
            session.execute(text(f"UPDATE {table} SET writeback_pending = false"))


def add_manager(db: Database) -> None:
    with db.system() as session:
        add_user(session, username=MANAGER, full_name="Manager A1", password=PASSWORD,
                 memberships=[(db.world.practices["a1"].practice_id, "practice_manager")])  # fmt: skip


def as_desk(db: Database, practice: PracticeRows):  # noqa: ANN201
    """A transaction of the application role at the practice, as a page's service runs."""
    return db.as_app(AccessContext.for_practices([practice.practice_id], user_id=practice.user_id))


def local_write(db: Database, practice: PracticeRows, sql: str, **params: object) -> None:
    with as_desk(db, practice) as session:
        session.execute(text(sql), params)


def animana_changes_client(db: Database, practice: PracticeRows, **values: str) -> None:
    """What the sync does with an Animana change of the client: held (a local change is pending), then settled."""
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    with as_desk(db, practice) as session:
        writing_as(session, "animana")
        session.execute(text(f"UPDATE client SET {assignments}, animana_version = 'v2' WHERE id = :c"),
                        {**values, "c": practice.client_id})  # fmt: skip
        settle(session, practice.practice_id, {}, master_key=MASTER_KEY)


def make_client_conflict(db: Database, practice: PracticeRows) -> None:
    """The desk changes the client's surname and city; Animana changed both too: a conflict of two fields."""
    local_write(db, practice, "UPDATE client SET last_name = 'Lokaal', city = 'Leiden' WHERE id = :c",
                c=practice.client_id)  # fmt: skip
    animana_changes_client(db, practice, last_name="Animana", city="Utrecht")


def clients_in_hybrid(db: Database, practice: PracticeRows) -> None:
    """The practice's clients module in hybrid: a resolution is saved here and queued for Animana (in animana mode
    it would be written through to an Animana these page tests do not run)."""
    with db.system() as session:
        session.execute(
            text("INSERT INTO practice_module_mode (practice_id, module, mode) VALUES (:p, 'clients', 'hybrid') "
                 "ON CONFLICT (practice_id, module) DO UPDATE SET mode = EXCLUDED.mode"),
            {"p": practice.practice_id},
        )  # fmt: skip


def status_rows(at) -> dict[str, dict[str, str]]:  # noqa: ANN001
    """The first status table, by module label."""
    frame = at.dataframe[0].value
    return {row["Module"]: row for row in frame.to_dict("records")}


def test_the_status_table_shows_the_queue_a_dead_letter_and_a_conflict_and_a_retry_requeues(app_env):
    a1 = app_env.world.practices["a1"]
    in_step_with_animana(app_env)
    add_manager(app_env)
    local_write(
        app_env, a1, "UPDATE appointment SET reason = 'Oorontsteking' WHERE id = :a", a=a1.appointment_id
    )
    local_write(app_env, a1, "UPDATE patient SET breed = 'Golden retriever' WHERE id = :p", p=a1.patient_id)
    make_client_conflict(app_env, a1)
    with app_env.system() as session:  # Animana refused the breed
        session.execute(text("UPDATE writeback_outbox SET state = 'dead', attempts = 5, "
                             "last_error = '422: breed unknown' WHERE table_name = 'patient'"))  # fmt: skip

    at = sign_in(MANAGER)
    at.switch_page(INTEGRATION).run()
    ok(at)
    assert at.title[0].value == "Animana integration"
    rows = status_rows(at)
    assert list(rows) == ["Clients and patients", "Agenda", "Medical record", "Billing"]
    assert list(rows["Agenda"]) == ["Module", "Mode", "Last sync", "Sync lag", "Queue", "Oldest waiting",
                                    "Not delivered", "Open conflicts", "Attention"]  # fmt: skip
    agenda, clients = rows["Agenda"], rows["Clients and patients"]
    assert (agenda["Mode"], agenda["Queue"], agenda["Not delivered"], agenda["Open conflicts"]) == (
        "Animana", "1", "0", "0")  # fmt: skip
    assert agenda["Last sync"] == "–" and agenda["Attention"] == "–"  # never synced in this world
    assert agenda["Oldest waiting"][-5:-2].endswith(":")  # a local "d MMM y HH:mm"
    # The client's entry is held by the conflict (still queued); the animal's is a dead letter.
    assert (clients["Queue"], clients["Not delivered"], clients["Open conflicts"]) == ("1", "1", "1")
    assert clients["Attention"] == "1 not delivered (dead letters); 1 open conflict(s)"

    page = texts(at)
    assert "patient Bello-a1 (dog) (change)" in page and "422: breed unknown" in page
    at.button(key=f"integ.retry.{a1.practice_id}.{_dead_id(app_env)}").click().run()
    ok(at)
    assert at.success[0].value == "patient Bello-a1 (dog) is back in the queue for Animana."
    clients = status_rows(at)["Clients and patients"]
    assert (clients["Queue"], clients["Not delivered"]) == ("2", "0")
    with app_env.system() as session:
        assert session.execute(text("SELECT state, attempts FROM writeback_outbox WHERE table_name = 'patient'")
                               ).one() == ("pending", 0)  # fmt: skip


def _dead_id(db: Database) -> int:
    with db.system() as session:
        return session.execute(text("SELECT id FROM writeback_outbox WHERE state = 'dead'")).scalar_one()


def test_switching_the_agenda_to_hybrid_says_what_changes_and_needs_the_confirmation(app_env):
    a1 = app_env.world.practices["a1"]
    in_step_with_animana(app_env)
    add_manager(app_env)
    at = sign_in(MANAGER)
    at.switch_page(INTEGRATION).run()
    ok(at)
    at.selectbox(key="integ.module").select("agenda").run()
    assert not at.warning  # the mode it has: nothing to confirm
    assert "Agenda at Praktijk a1 is in Animana mode" in texts(at)
    at.selectbox(key=f"integ.mode.{a1.practice_id}.agenda").select("hybrid").run()
    ok(at)
    assert at.warning[0].value == ("Agenda at Praktijk a1 switches to Hybrid mode: VetConnect writes, Animana is "
                                   "kept up to date.")  # fmt: skip
    assert at.button(key="integ.switch").disabled
    at.checkbox(key=f"integ.confirm.{a1.practice_id}.agenda.hybrid").check().run()
    at.button(key="integ.switch").click().run()
    ok(at)
    assert at.success[0].value == "Agenda at Praktijk a1 is now in Hybrid mode."
    assert status_rows(at)["Agenda"]["Mode"] == "Hybrid"
    assert status_rows(at)["Clients and patients"]["Mode"] == "Animana"
    # Another module and back: each starts from its own mode, nothing left to confirm.
    at.selectbox(key="integ.module").select("clients").run()
    at.selectbox(key="integ.module").select("agenda").run()
    assert at.selectbox(key=f"integ.mode.{a1.practice_id}.agenda").value == "hybrid" and not at.warning
    with app_env.system() as session:
        assert session.execute(
            text("SELECT mode, changed_by IS NOT NULL FROM practice_module_mode WHERE practice_id = :p "
                 "AND module = 'agenda'"), {"p": a1.practice_id},
        ).one() == ("hybrid", True)  # fmt: skip


def test_the_manager_resolves_a_conflict_field_by_field(app_env):
    a1 = app_env.world.practices["a1"]
    in_step_with_animana(app_env)
    add_manager(app_env)
    clients_in_hybrid(app_env, a1)
    make_client_conflict(app_env, a1)
    at = sign_in(MANAGER)
    at.switch_page(CONFLICTS).run()
    ok(at)
    assert "client J. Lokaal" in texts(at)  # the record by its name, not its id
    shown = [m.value for m in at.markdown]
    for value in ("Surname", "Lokaal", "Animana", "City", "Leiden", "Utrecht"):
        assert value in shown
    with app_env.system() as session:
        conflict_id = session.execute(
            text("SELECT id FROM writeback_conflict WHERE state = 'open'")
        ).scalar_one()
    click(at, "Resolve")  # nothing chosen yet
    ok(at)
    assert "Choose a side for every field; still open: city, surname." in at.error[0].value
    click(at, "All Animana")
    assert at.radio(key=f"conf.{conflict_id}.city").value == "animana"
    at.radio(key=f"conf.{conflict_id}.city").set_value("local").run()
    click(at, "Resolve")
    ok(at)
    assert at.success[0].value == ("Conflict about client J. Lokaal resolved (city: VetConnect, surname: "
                                   "Animana).")  # fmt: skip
    assert any("No open conflicts" in i.value for i in at.info)
    with app_env.system() as session:
        row = session.execute(
            text("SELECT last_name, city FROM client WHERE id = :c"), {"c": a1.client_id}
        ).one()
        assert tuple(row) == ("Animana", "Leiden")
        state = session.execute(
            text("SELECT state FROM writeback_conflict WHERE id = :i"), {"i": conflict_id}
        )
        assert state.scalar_one() == "resolved"


def test_the_agenda_and_the_client_card_mark_records_not_in_step_with_animana(app_env):
    a1 = app_env.world.practices["a1"]
    in_step_with_animana(app_env)
    add_manager(app_env)
    today = app_env.week.today_appointment["a1"]
    local_write(app_env, a1, "UPDATE appointment SET reason = 'Hoest' WHERE id = :a", a=today)
    at = sign_in(MANAGER)
    at.switch_page("workspaces/scheduling.py").run()
    ok(at)
    # Only today's 09:00 appointment changed here (the factories' other appointment is in step).
    marked = [o for o in at.selectbox(key="sched.appointment").options if "Animana" in o]
    assert (
        len(marked) == 1 and " 09:00 · " in marked[0] and marked[0].endswith("· ⟳ being written to Animana")
    )
    assert ":blue-badge[⟳ being written to Animana]" in texts(at)

    make_client_conflict(app_env, a1)
    at.session_state["card.client"] = (a1.practice_id, a1.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    page = texts(at)
    assert ":orange-badge[⚠ conflict with Animana]" in page
    assert "being written to Animana" not in page  # the animal has no local change

    local_write(app_env, a1, "UPDATE patient SET breed = 'Beagle' WHERE id = :p", p=a1.patient_id)
    at.session_state["rec.practice"], at.session_state["rec.patient"] = a1.practice_id, a1.patient_id
    at.switch_page("workspaces/records.py").run()
    ok(at)
    assert ":blue-badge[⟳ being written to Animana]" in texts(at)


def test_the_pages_are_offered_to_the_manager_not_to_the_receptionist(app_env):
    add_manager(app_env)
    manager = sign_in(MANAGER)
    assert offered(manager, INTEGRATION) and offered(manager, CONFLICTS)
    receptionist = sign_in(RECEPTIONIST)
    assert not offered(receptionist, INTEGRATION) and not offered(receptionist, CONFLICTS)
