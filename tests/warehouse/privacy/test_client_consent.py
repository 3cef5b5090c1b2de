"""Consent per purpose against PostgreSQL under RLS: recorded and withdrawn with who, when and how; the newest
row is the truth (for the service and for the SQL function policies use); the record cannot be rewritten; another
practice's consents do not exist in this session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import PracticeRows
from warehouse.kernel.tenancy import AccessContext, apply_context
from warehouse.privacy.consent import (
    ConsentError,
    Purpose,
    consent_history,
    current_consents,
    has_consent,
    record_consent,
)
from warehouse.security.permissions import Actor

# After the world's own consent rows (recorded at the time the world is built): the newest word counts.
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)


@contextmanager
def _rolled_back(db, rows: PracticeRows) -> Iterator[Session]:  # noqa: ANN001
    """A tenant transaction of ``rows``' practice that is rolled back (the module's world stays as built)."""
    with Session(db.app_engine) as session:
        session.begin()
        apply_context(session, AccessContext.for_practices([rows.practice_id], user_id=rows.user_id))
        try:
            yield session
        finally:
            session.rollback()


def _desk(rows: PracticeRows) -> Actor:
    return Actor.at(rows.user_id, rows.practice_id, {"receptionist"})


def test_grant_withdraw_round_trip_with_who_when_how_and_history(world_db):
    a1 = world_db.world.practices["a1"]
    with _rolled_back(world_db, a1) as session:
        # The factories' client granted reminders by e-mail at the desk; SMS never asked.
        assert has_consent(session, a1.practice_id, a1.client_id, Purpose.REMINDERS_EMAIL)
        assert (
            current_consents(session, a1.practice_id, a1.client_id)[Purpose.REMINDERS_SMS].recorded_at is None
        )
        record_consent(session, _desk(a1), a1.practice_id, a1.client_id, Purpose.REMINDERS_SMS, True, "phone",
                       "  belde zelf  ", now=T0)  # fmt: skip
        withdrawn = record_consent(session, _desk(a1), a1.practice_id, a1.client_id, "reminders_email", False,
                                   "email", now=T0 + dt.timedelta(hours=1))  # fmt: skip
        assert (withdrawn.granted, withdrawn.recorded_by, withdrawn.how) == (False, "Vet a1", "email")
        current = current_consents(session, a1.practice_id, a1.client_id)
        assert list(current) == list(Purpose)
        assert [(p.value, s.granted) for p, s in current.items()] == [
            ("reminders_email", False), ("reminders_sms", True), ("referral_sharing", False), ("analytics", False),
        ]  # fmt: skip
        sms = current[Purpose.REMINDERS_SMS]
        assert (sms.recorded_at, sms.recorded_by, sms.how, sms.note) == (T0, "Vet a1", "phone", "belde zelf")
        history = consent_history(session, a1.practice_id, a1.client_id)
        assert [(h.purpose.value, h.granted, h.how) for h in history[:2]] == [
            ("reminders_email", False, "email"), ("reminders_sms", True, "phone"),
        ]  # fmt: skip
        assert [(h.purpose.value, h.granted) for h in history[2:]] == [
            ("reminders_email", True)
        ]  # the factories'
        assert not has_consent(session, a1.practice_id, a1.client_id, Purpose.REMINDERS_EMAIL)
        assert has_consent(session, a1.practice_id, a1.client_id, Purpose.REMINDERS_SMS)
        entries = session.execute(
            text("SELECT actor_user_id, detail FROM audit_log WHERE practice_id = :p AND action = 'consent' "
                 "ORDER BY seq"), {"p": a1.practice_id},
        ).all()  # fmt: skip
        assert [(e.actor_user_id, e.detail) for e in entries] == [
            (a1.user_id, {"purpose": "reminders_sms", "granted": True, "how": "phone"}),
            (a1.user_id, {"purpose": "reminders_email", "granted": False, "how": "email"}),
        ]


@pytest.mark.parametrize(
    ("purpose", "how", "note", "field"),
    [("marketing", "phone", None, "purpose"), ("analytics", "fax", None, "how"),
     ("analytics", "animana", None, "how"), ("analytics", "paper", "x" * 501, "note")],
)  # fmt: skip
def test_a_wrong_purpose_how_or_note_is_refused_at_its_field(world_db, purpose, how, note, field):
    a1 = world_db.world.practices["a1"]
    with _rolled_back(world_db, a1) as session, pytest.raises(ConsentError) as refused:
        record_consent(session, _desk(a1), a1.practice_id, a1.client_id, purpose, True, how, note)
    assert refused.value.field == field


def test_another_practices_client_has_no_consent_here_and_cannot_be_given_one(world_db):
    a1, b1 = world_db.world.practices["a1"], world_db.world.practices["b1"]
    with _rolled_back(world_db, a1) as session:
        # b1's client did grant reminders by e-mail (factories); from a1's session it does not exist.
        assert not has_consent(session, b1.practice_id, b1.client_id, Purpose.REMINDERS_EMAIL)
        assert consent_history(session, b1.practice_id, b1.client_id) == []
        with pytest.raises(ConsentError, match="does not exist"):
            record_consent(session, Actor.at(a1.user_id, b1.practice_id, {"receptionist"}), b1.practice_id,
                           b1.client_id, Purpose.ANALYTICS, True, "phone")  # fmt: skip
    with _rolled_back(world_db, b1) as session:
        assert has_consent(session, b1.practice_id, b1.client_id, Purpose.REMINDERS_EMAIL)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE client_consent SET granted = NOT granted", "UPDATE client_consent SET note = 'x'",
     "DELETE FROM client_consent"],
)  # fmt: skip
def test_the_record_cannot_be_rewritten_or_deleted_by_the_application(world_db, statement):
    a1 = world_db.world.practices["a1"]
    with (
        _rolled_back(world_db, a1) as session,
        pytest.raises(Exception, match="permission denied") as refused,
    ):
        session.execute(text(statement))
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(list(Purpose)), st.booleans()), max_size=8))
def test_the_current_consent_is_the_last_word_per_purpose(world_db, words):
    a1 = world_db.world.practices["a1"]
    with _rolled_back(world_db, a1) as session:
        for minute, (purpose, granted) in enumerate(words):
            record_consent(session, _desk(a1), a1.practice_id, a1.client_id, purpose, granted, "paper",
                           now=T0 + dt.timedelta(minutes=minute))  # fmt: skip
        last = {Purpose.REMINDERS_EMAIL: True} | dict(words)
        expected = {purpose: last.get(purpose, False) for purpose in Purpose}
        assert {
            p: s.granted for p, s in current_consents(session, a1.practice_id, a1.client_id).items()
        } == expected
        assert {p: has_consent(session, a1.practice_id, a1.client_id, p) for p in Purpose} == expected
