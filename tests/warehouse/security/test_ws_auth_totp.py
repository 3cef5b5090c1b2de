"""TOTP codes are single-use: a replay inside the code's validity window is refused, and two concurrent
sign-ins with one code cannot both pass (against PostgreSQL, through the sign-in services)."""

from __future__ import annotations

import datetime as dt
import threading

import pyotp
import pytest
from sqlalchemy import func, select

from tests.conftest import MASTER_KEY
from tests.factories import PASSWORD
from warehouse.schema.tenancy import AppUser, UserSession
from warehouse.security import mfa, self_service, signin

# A fixed instant in the middle of a 30-second step, so ± a few seconds never crosses into another step.
T0 = dt.datetime.fromtimestamp(30 * (int(dt.datetime.now(dt.UTC).timestamp()) // 30) + 15, dt.UTC)


def code_at(secret: str, at: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def test_accepted_step_refuses_the_same_or_an_earlier_step():
    secret = pyotp.random_base32()
    step = mfa.accepted_step(secret, code_at(secret, T0), at=T0)
    assert step == int(T0.timestamp()) // 30
    assert mfa.accepted_step(secret, code_at(secret, T0), last_step=step, at=T0) is None
    # The previous step's code is still inside the drift window, but older than the step already used.
    earlier = T0 - dt.timedelta(seconds=30)
    assert mfa.accepted_step(secret, code_at(secret, earlier), at=T0) == step - 1
    assert mfa.accepted_step(secret, code_at(secret, earlier), last_step=step, at=T0) is None
    later = T0 + dt.timedelta(seconds=30)
    assert mfa.accepted_step(secret, code_at(secret, later), last_step=step, at=later) == step + 1
    assert mfa.accepted_step(secret, code_at(secret, T0 - dt.timedelta(seconds=90)), at=T0) is None
    assert mfa.accepted_step(secret, "12345", at=T0) is None


def _enrol(ws_db, username: str = "fm-a") -> tuple[int, str]:  # noqa: ANN001
    pending = signin.begin_sign_in(ws_db.admin_engine, username, PASSWORD, now=T0)
    assert isinstance(pending, signin.MfaEnrolmentRequired)
    secret = pending.enrolment.secret
    user = signin.complete_enrolment(
        ws_db.admin_engine, pending, code_at(secret, T0), master_key=MASTER_KEY, now=T0
    )
    assert isinstance(user, signin.SignedInUser)
    return user.user_id, secret


def test_the_enrolment_code_and_a_used_code_cannot_sign_in_again(ws_db):
    user_id, secret = _enrol(ws_db)
    with ws_db.system() as session:
        assert session.get(AppUser, user_id).totp_last_step == int(T0.timestamp()) // 30
    soon = T0 + dt.timedelta(seconds=5)
    challenge = signin.begin_sign_in(ws_db.admin_engine, "fm-a", PASSWORD, now=soon)
    replay = signin.complete_mfa(
        ws_db.admin_engine, challenge, code_at(secret, T0), master_key=MASTER_KEY, now=soon
    )
    assert isinstance(replay, signin.Rejected) and "used already" in replay.reason
    later = T0 + dt.timedelta(seconds=30)
    fresh = signin.complete_mfa(
        ws_db.admin_engine, challenge, code_at(secret, later), master_key=MASTER_KEY, now=later
    )
    assert isinstance(fresh, signin.SignedInUser)
    again = signin.begin_sign_in(ws_db.admin_engine, "fm-a", PASSWORD, now=later)
    replay = signin.complete_mfa(
        ws_db.admin_engine, again, code_at(secret, later), master_key=MASTER_KEY, now=later
    )
    assert isinstance(replay, signin.Rejected)
    with ws_db.system() as session:
        # A replay counts as a failure (the success before it reset the count), so the lockout caps replays.
        assert session.get(AppUser, user_id).failed_logins == 1


def test_two_concurrent_sign_ins_with_one_code_open_one_session(ws_db):
    user_id, secret = _enrol(ws_db)
    later = T0 + dt.timedelta(seconds=30)
    challenge = signin.begin_sign_in(ws_db.admin_engine, "fm-a", PASSWORD, now=later)
    code = code_at(secret, later)
    attempts = 4  # the 3 refused ones count as failures; 5 would lock the account
    barrier = threading.Barrier(attempts)
    outcomes: list[object] = []

    def attempt() -> None:
        barrier.wait()
        outcomes.append(
            signin.complete_mfa(ws_db.admin_engine, challenge, code, master_key=MASTER_KEY, now=later)
        )

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == attempts
    assert sum(isinstance(o, signin.SignedInUser) for o in outcomes) == 1
    assert sum(isinstance(o, signin.Rejected) for o in outcomes) == attempts - 1
    with ws_db.system() as session:
        sessions = session.scalar(
            select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id)
        )
    assert sessions == 2  # the enrolment's and exactly one of the concurrent attempts'


def test_switching_mfa_off_needs_a_code_not_used_before(ws_db):
    user = signin.authenticate(ws_db.admin_engine, "vet-a1", PASSWORD)
    enrolment = mfa.new_enrolment("vet-a1")
    code = pyotp.TOTP(enrolment.secret).now()
    with ws_db.as_app(user.context) as session:
        self_service.confirm_mfa_enrolment(session, user.user_id, enrolment, code, master_key=MASTER_KEY)
    with (
        ws_db.as_app(user.context) as session,
        pytest.raises(self_service.AccountChangeError, match="used already"),
    ):
        self_service.disable_mfa(session, user.user_id, user.roles, code=code, master_key=MASTER_KEY)
    with ws_db.system() as session:
        assert session.get(AppUser, user.user_id).mfa_enabled
