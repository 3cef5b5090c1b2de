"""The practice world of the workspace and service tests: the factories' world plus a working week (shifts,
today's appointments), and AppTest helpers. A pytest plugin (``tests/conftest.py``), so tests in any package use it."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import delete
from streamlit.testing.v1 import AppTest

from tests.conftest import (
    MASTER_KEY,
    Database,
    WorldTemplate,
    analyse_template,
    drop_database,
    open_world_database,
)
from tests.factories import PASSWORD, TZ
from vetconnect.settings import get_settings
from warehouse.schema.scheduling import Appointment, AppointmentType, StaffShift
from warehouse.security.accounts import add_user


@dataclass
class WorkWeek:
    today: dt.date
    cat_only_type: dict[str, int]  # franchise code -> appointment type id bookable for cats only
    today_appointment: dict[str, int]  # practice code -> a booked appointment at 09:00 today


def add_work_week(db: Database) -> WorkWeek:
    today = dt.datetime.now(TZ).date()
    week = WorkWeek(today, {}, {})
    with db.system() as session:
        for code, franchise_id in db.world.franchises.items():
            kind = AppointmentType(franchise_id=franchise_id, code="castration", name="Castratie kat",
                                   duration_minutes=30, species=["cat"])  # fmt: skip
            session.add(kind)
            session.flush()
            week.cat_only_type[code] = kind.id
        for code, rows in db.world.practices.items():
            session.execute(delete(StaffShift).where(StaffShift.practice_id == rows.practice_id))
            for offset in range(-1, 8):
                day = today + dt.timedelta(days=offset)
                session.add(StaffShift(
                    practice_id=rows.practice_id, resource_id=rows.resource_id,
                    starts_at=dt.datetime.combine(day, dt.time(8, 0), TZ),
                    ends_at=dt.datetime.combine(day, dt.time(17, 30), TZ),
                ))  # fmt: skip
            start = dt.datetime.combine(today, dt.time(9, 0), TZ)
            appointment = Appointment(
                practice_id=rows.practice_id, resource_id=rows.resource_id, patient_id=rows.patient_id,
                client_id=rows.client_id, franchise_id=rows.franchise_id, starts_at=start,
                ends_at=start + dt.timedelta(minutes=20), status="booked", reason="Jaarlijkse controle",
            )  # fmt: skip
            session.add(appointment)
            session.flush()
            week.today_appointment[code] = appointment.id
    return week


@dataclass
class PracticeWorldTemplate:
    template: WorldTemplate
    week: WorkWeek


@pytest.fixture(scope="session")
def practice_world_template(server_url: str, world_template: WorldTemplate) -> PracticeWorldTemplate:
    """The factories' world with its working week, made once per worker and cloned for each test."""
    db = open_world_database(server_url, world_template)
    week = add_work_week(db)
    db.dispose()  # a template must have no connections when it is cloned
    analyse_template(server_url, db.name)
    return PracticeWorldTemplate(WorldTemplate(db.name, db.world), week)  # type: ignore[attr-defined]


@pytest.fixture
def ws_db(server_url: str, practice_world_template: PracticeWorldTemplate) -> Iterator[Database]:
    """A world of its own per test (tests here book and check in, i.e. commit)."""
    db = open_world_database(server_url, practice_world_template.template)
    db.week = copy.deepcopy(practice_world_template.week)  # type: ignore[attr-defined]
    yield db
    db.dispose()
    drop_database(server_url, db.name)


APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
RECEPTIONIST = "balie-a1"


@pytest.fixture
def app_env(ws_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The app pointed at the workspace world, with a receptionist at a1 besides the factories' users."""
    monkeypatch.setenv("DATABASE_URL", ws_db.admin_url)
    monkeypatch.setenv("VETCONNECT_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    monkeypatch.delenv("VETCONNECT_DEMO", raising=False)
    get_settings.cache_clear()
    with ws_db.system() as session:
        add_user(session, username=RECEPTIONIST, full_name="Balie A1", password=PASSWORD,
                 memberships=[(ws_db.world.practices["a1"].practice_id, "receptionist")])  # fmt: skip
    yield ws_db
    get_settings.cache_clear()


def sign_in(username: str, password: str = PASSWORD, *, secret: str | None = None) -> AppTest:
    """Sign in through the page; with ``secret``, answer the TOTP step (enrolment or challenge) too."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    pending = at.session_state["pending_sign_in"] if "pending_sign_in" in at.session_state else None
    if pending is not None:
        # Enrolment: the current code. A later challenge: the next step's code, because a code is accepted
        # only once and the enrolment may have used the current one.
        totp = pyotp.TOTP(secret or pending.enrolment.secret)
        code = totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)) if secret else totp.now()
        at.text_input[0].input(code)
        at.button[0].click().run()
    return at


def click(at: AppTest, label: str) -> AppTest:
    button = next(b for b in at.button if b.label == label)
    return button.click().run()


@pytest.fixture
def running_app(ws_db: Database) -> Iterator[tuple[str, Database]]:
    """``streamlit run dashboard/asgi.py`` on the workspace world, with a receptionist at a1; (URL, database)."""
    from tests.dashboard.browser_support import free_port, streamlit_app

    with ws_db.system() as session:
        add_user(session, username=RECEPTIONIST, full_name="Balie A1", password=PASSWORD,
                 memberships=[(ws_db.world.practices["a1"].practice_id, "receptionist")])  # fmt: skip
    with streamlit_app(ws_db, free_port()) as url:
        yield url, ws_db
