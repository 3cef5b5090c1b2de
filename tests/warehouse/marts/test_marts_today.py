"""A day at a practice synced from Animana: the hub's tasks are the user's own, and the dashboards include the
work done today (the consult a vet just finished) with Dutch, labelled figures."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from conftest import run_page, signed_in
from sqlalchemy import text

from tests.factories import PASSWORD
from warehouse.hub.service import today_for_user
from warehouse.records import consults
from warehouse.schema.scheduling import Appointment, Resource
from warehouse.security.accounts import access_context_for_user, add_user
from warehouse.security.permissions import Actor

TZ = ZoneInfo("Europe/Amsterdam")
VET, RECEPTION = frozenset({"veterinarian"}), frozenset({"receptionist"})
DUTCH_PERCENT = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d %$")  # 12,3 %
DUTCH_EUROS = re.compile(r"^€ -?\d{1,3}(\.\d{3})*(,\d{2})?$")  # € 1.234 / € 1.234,50


@dataclass
class Day:
    practice_id: int
    vet_id: int
    reception_id: int
    consult: int  # today's appointment the vet consulted (finished, note not signed)
    arriving: int  # today's appointment starting in five minutes, not checked in


@pytest.fixture
def day(app_env) -> Day:  # noqa: ANN001
    db, practice = app_env.db, app_env.practices[0]
    now = dt.datetime.now(dt.UTC)
    with db.system("test: a vet and a receptionist start their day") as session:
        vet = add_user(session, username="vet-today", full_name="Dr. Vandaag", password=PASSWORD,
                       memberships=[(practice.practice_id, "veterinarian")])  # fmt: skip
        desk = add_user(session, username="desk-today", full_name="Balie Vandaag", password=PASSWORD,
                        memberships=[(practice.practice_id, "receptionist")])  # fmt: skip
        column = Resource(practice_id=practice.practice_id, kind="staff", name="Dr. Vandaag", user_id=vet.id)
        session.add(column)
        session.flush()
        patient_id, client_id = session.execute(
            text("SELECT patient_id, client_id FROM client_patient WHERE practice_id = :p AND is_primary "
                 "ORDER BY patient_id LIMIT 1"),
            {"p": practice.practice_id},
        ).one()  # fmt: skip
        appointments = [
            Appointment(
                practice_id=practice.practice_id,
                resource_id=column.id,
                patient_id=patient_id,
                client_id=client_id,
                franchise_id=practice.franchise_id,
                starts_at=start,
                ends_at=start + dt.timedelta(minutes=15),
                status="booked",
                reason="Controle",
            )  # fmt: skip
            for start in (now - dt.timedelta(minutes=40), now + dt.timedelta(minutes=5))
        ]
        session.add_all(appointments)
        session.flush()
        ids = [a.id for a in appointments]
    return Day(practice.practice_id, vet.id, desk.id, *ids)


def _finish_consult(db, day: Day) -> None:  # noqa: ANN001
    with db.system() as session:
        context = access_context_for_user(session, day.vet_id)
    with db.as_app(context) as session:
        consults.write_consult(
            session, Actor.at(day.vet_id, day.practice_id, VET), practice_id=day.practice_id, appointment_id=day.consult,
            note=consults.ConsultNote(subjective="Jeukt aan de oren"), finish=True,
        )  # fmt: skip


def _today(db, user_id: int, roles: frozenset[str]):  # noqa: ANN001, ANN202
    with db.system() as session:
        context = access_context_for_user(session, user_id)
    with db.as_app(context) as session:
        return today_for_user(session, user_id=user_id, roles=roles, now=dt.datetime.now(dt.UTC), tz=TZ)


def test_tasks_are_the_users_own_and_synced_visits_are_not_unsigned_notes(app_env, day):
    db = app_env.db
    with db.system() as session:
        synced, synced_unsigned = session.execute(
            text("SELECT count(*), count(*) FILTER (WHERE signed_at IS NULL) FROM visit "
                 "WHERE practice_id = :p AND animana_id IS NOT NULL"),
            {"p": day.practice_id},
        ).one()  # fmt: skip
    # The history that used to be everyone's "unsigned notes": every synced visit (Animana has no signature).
    assert synced_unsigned == synced > 1
    _finish_consult(db, day)

    vet = _today(db, day.vet_id, VET)
    assert vet.task_counts == {"unsigned_note": 1, "lab_review": 0}  # only their own, none of the synced ones
    (note,) = [t for t in vet.tasks if t.kind == "unsigned_note"]
    opens = note.opens()
    assert (opens.kind, opens.practice_id) == ("patient", day.practice_id) and opens.id == note.patient_id

    desk = _today(db, day.reception_id, RECEPTION)
    assert set(desk.task_counts) == {
        "arrival",
        "unpaid_invoice",
        "due_reminder",
    }  # no clinical notes at the desk
    arrivals = [t for t in desk.tasks if t.kind == "arrival"]
    assert day.arriving in {t.id for t in arrivals}
    assert day.consult not in {t.id for t in arrivals}  # checked in and seen: not an arrival any more
    arrival = next(t for t in arrivals if t.id == day.arriving)
    assert arrival.opens().kind == "appointment" and arrival.opens().starts_at is not None
    assert re.match(r"^\d{2}:\d{2} · Dr\. Vandaag$", arrival.detail)  # local time, who they come for
    with db.system() as session:
        overdue = session.scalar(
            text("SELECT count(*) FROM invoice i WHERE i.practice_id = :p AND i.status = 'issued' "
                 "AND coalesce(i.due_on, i.issued_on + 30) < :today AND i.total_incl_cents > coalesce((SELECT "
                 "sum(amount_cents) FROM payment y WHERE y.practice_id = i.practice_id AND y.invoice_id = i.id), 0)"),
            {"p": day.practice_id, "today": dt.datetime.now(TZ).date()},
        )  # fmt: skip
    assert desk.task_counts["unpaid_invoice"] == overdue
    for task in (t for t in desk.tasks if t.kind == "unpaid_invoice"):
        assert (
            task.opens().kind == "invoice"
            and "€ " in task.detail
            and "." not in task.detail.split("€ ")[1][-3:]
        )


def _tile(at, label: str) -> str:  # noqa: ANN001
    return next(m.value for m in at.metric if m.label == label)


def test_a_consult_finished_today_is_in_the_practice_dashboard_at_once(app_env, day):
    practice = next(p for p in app_env.practices if p.practice_id == day.practice_id)
    manager = signed_in(app_env.db, "pm-today", "practice_manager", [practice])
    today = dt.datetime.now(TZ).date()
    at = run_page("practice_dashboard.py", manager)
    at.date_input(key="practice.period").set_value((today, today)).run()
    before = int(_tile(at, "Visits").replace(".", ""))

    _finish_consult(app_env.db, day)  # the marts were refreshed by the fixture; this consult is new work
    at.run()  # the manager looks again (same session: what the page keeps in memory must not hide it)
    assert not at.exception, at.exception
    assert int(_tile(at, "Visits").replace(".", "")) == before + 1
    caption = next(c.value for c in at.caption if c.value.startswith("Figures as of"))
    assert re.search(rf"{today.day} \w+\.? {today.year} \d{{2}}:\d{{2}}$", caption), caption  # Dutch, local


def test_practice_dashboard_tables_have_labels_and_dutch_figures(app_env):
    practice = app_env.practices[0]
    at = run_page("practice_dashboard.py", signed_in(app_env.db, "pm-nl", "practice_manager", [practice]))
    assert not at.exception, at.exception
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    staff = next(f for cols, f in frames.items() if "Utilisation" in cols)
    assert list(staff.columns)[:3] == ["Vet", "Department", "Appointments"]
    assert all(DUTCH_PERCENT.match(v) or v == "–" for v in staff["Utilisation"])
    no_shows = next(f for cols, f in frames.items() if "Appointment" in cols)
    assert all(re.match(r"^\d{1,2} \w+\.? \d{4} \d{2}:\d{2}$", v) for v in no_shows["Appointment"])
    for frame in frames.values():
        assert not any(c.islower() or "_" in c for c in frame.columns)  # labels, not column names
        assert "None" not in frame.to_string()
    tiles = {m.label: m.value for m in at.metric}
    assert DUTCH_EUROS.match(tiles["Revenue excl. VAT"]) and DUTCH_PERCENT.match(tiles["Utilisation"])


def test_franchise_dashboard_ranks_practices_with_labels_and_dutch_figures(app_env):
    user = signed_in(app_env.db, "fm-nl", "franchise_manager", app_env.practices)
    at = run_page("franchise_dashboard.py", user)
    assert not at.exception, at.exception
    ranking = at.dataframe[0].value
    assert list(ranking.columns[:3]) == ["Practice", "Revenue excl. VAT", "Revenue incl. VAT"]
    assert all(DUTCH_EUROS.match(v) for v in ranking["Revenue excl. VAT"])
    assert all(DUTCH_PERCENT.match(v) or v == "–" for v in ranking["No-show rate"])
    # The blood tests of the Animana price list are lab articles: lab revenue in euros, not "–" or "€ 0".
    assert all(DUTCH_EUROS.match(v) and v != "€ 0" for v in ranking["Lab revenue"])
    assert DUTCH_EUROS.match(_tile(at, "Lab revenue")) and _tile(at, "Lab revenue") != "€ 0"
    drill = at.dataframe[1].value
    assert list(drill.columns[:2]) == ["Department", "Appointments"]
    assert "None" not in ranking.to_string() + drill.to_string()
