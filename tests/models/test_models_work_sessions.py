"""User work sessions (case = one person's stretch of work) from the warehouse: derivation under RLS, the
session split, training and promotion as their own artefact kind, and "what you will likely do next" in the
hub for a user with a recent session."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import text

from models import serving, training
from models.work_sessions import CLINICAL, SESSION_GAP, split_sessions, work_session_log
from warehouse.kernel.tenancy import AccessContext
from warehouse.learning import model_store
from warehouse.learning.eventlog import care_episode_log
from warehouse.records import consults
from warehouse.scheduling.transitions import check_in
from warehouse.security.permissions import Actor


@pytest.fixture(scope="module")
def sessions(model_world, franchise) -> pl.DataFrame:
    _, practices = franchise
    with model_world.db.as_app(AccessContext.for_practices(practices)) as session:
        return work_session_log(session, practices)


def test_synced_history_gives_staff_sessions_of_clinical_work_within_one_day(sessions, franchise):
    _, practices = franchise
    assert sessions["case_id"].n_unique() >= 10
    # Synced records name no app user: the actor is the staff member the appointment is booked on, and
    # only the clinical work is attributed (front-desk work of synced history has no known actor).
    assert set(sessions["actor"].str.split(":").list.first()) == {"staff"}
    assert set(sessions["activity"]) <= set(CLINICAL) and "consult" in set(sessions["activity"])
    assert set(sessions["practice_id"]) == set(practices)
    local = sessions.with_columns(
        day=pl.col("timestamp")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Europe/Amsterdam")
        .dt.date(),
        gap=pl.col("timestamp").diff().over("case_id"),
    )
    per_case = local.group_by("case_id").agg(days=pl.col("day").n_unique(), actors=pl.col("actor").n_unique(),
                                             widest=pl.col("gap").max())  # fmt: skip
    assert (per_case["days"] == 1).all() and (per_case["actors"] == 1).all()
    assert (per_case["widest"].fill_null(dt.timedelta(0)) <= SESSION_GAP).all()


def test_a_session_is_split_by_a_long_gap_and_by_the_local_day():
    t0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    stamps = [t0, t0 + dt.timedelta(minutes=30), t0 + dt.timedelta(hours=3),  # > 2 h gap: new session
              dt.datetime(2026, 3, 2, 22, 50, tzinfo=dt.UTC), dt.datetime(2026, 3, 2, 23, 10, tzinfo=dt.UTC)]  # fmt: skip
    # 22:50 and 23:10 UTC are 23:50 and 00:10 in Amsterdam: 20 minutes apart but on two local days.
    events = pl.DataFrame({"practice_id": [1] * 5, "actor": ["user:7"] * 5, "activity": ["a"] * 5,
                           "timestamp": stamps, "order": [0] * 5})  # fmt: skip
    assert split_sessions(events)["case_id"].to_list() == ["1:user:7:1", "1:user:7:1", "1:user:7:2",
                                                            "1:user:7:3", "1:user:7:4"]  # fmt: skip


def test_rls_limits_the_sessions_to_the_visible_practice(model_world, franchise):
    _, practices = franchise
    with model_world.db.as_app(AccessContext.for_practices([practices[0]])) as session:
        one = work_session_log(session, practices)  # asks for both; RLS gives one
    assert set(one["practice_id"]) == {practices[0]}


@pytest.fixture(scope="module")
def trained(model_world, franchise):
    """The work-session model trained on the synced world, checked, and promoted (committed)."""
    franchise_id, practices = franchise
    with model_world.db.as_app(AccessContext.for_practices(practices)) as session:
        result = training.train(session, franchise_id, training.WORK_SESSION, practices)
        decision = training.decide(session, franchise_id, result.artifact.id)
        if not decision["passed"]:  # a tiny world may tie or trail Markov; serving still needs a model
            model_store.decide(session, franchise_id, result.artifact.id, promote=True,
                               decision={"forced": "test fixture"})  # fmt: skip
    return result, decision


def test_the_work_session_model_is_its_own_artefact_kind_with_baselines(model_world, franchise, trained):
    franchise_id, practices = franchise
    result, decision = trained
    metrics = result.artifact.metrics
    assert result.artifact.kind == training.WORK_SESSION
    assert {"top1", "top3", "markov_top1", "most_frequent_top1", "n_test_prefixes"} <= set(metrics)
    assert metrics["top3"] >= metrics["top1"] > metrics["most_frequent_top1"]
    assert decision["passed"] == (decision["candidate_top1"] >= decision["markov_top1"]), decision
    with model_world.db.as_app(AccessContext.for_practices(practices)) as session:
        promoted = model_store.promoted(session, franchise_id, training.WORK_SESSION)
        care = model_store.promoted(session, franchise_id, "next_action")
        assert promoted.id == result.artifact.id and (care is None or care.id != promoted.id)
        model = training.load(promoted)  # hash verified
        assert set(model.classes) <= {*CLINICAL, "<end>"}


def test_hub_suggests_what_the_user_will_likely_do_next_in_their_session(model_world, franchise, trained):
    franchise_id, practices = franchise
    practice, user_id = practices[0], 424242
    context = AccessContext.for_practices([practice], user_id=user_id)
    with model_world.db.as_app(context) as session:
        # Set-up (rolled back): the practice's latest booking, not yet seen (no visit), moved to now (the synced
        # world's anchor is fixed, so its agenda lies in the past; a session's clinical work is read from the
        # appointments of the day before the session on).
        appointment_id, patient_id = session.execute(text(
            "UPDATE appointment SET starts_at = now(), ends_at = now() + interval '15 minutes' "
            "WHERE practice_id = :p AND id = (SELECT max(id) FROM appointment WHERE practice_id = :p "
            "AND status = 'booked') RETURNING id, patient_id"), {"p": practice}).one()  # fmt: skip
        # No session yet: the user has done nothing today, so there is no session suggestion.
        assert serving._for_work_session(session, context, user_id) is None
        check_in(session, Actor.at(user_id, practice, {"receptionist"}), practice_id=practice,
                 appointment_id=appointment_id)  # fmt: skip
        # A check-in alone says nothing the model learnt (synced history has no front-desk actor), and in this
        # small world every synced session is one patient's clinical work: the user goes on to hold the consult.
        consults.write_consult(session, Actor.at(user_id, practice, {"veterinarian"}), practice_id=practice,
                               appointment_id=appointment_id, note=consults.ConsultNote(subjective="Hoest"))  # fmt: skip
        suggestions = serving.suggest_next_actions(session, context, user_id=user_id)
        assert 1 <= len(suggestions) <= 3 and {s.basis for s in suggestions} == {"work_session"}
        assert suggestions[0].activity == "diagnosis", suggestions  # every synced consult is followed by one
        assert all(s.params["patient_id"] == patient_id and s.params["appointment_id"] == appointment_id
                   for s in suggestions)  # fmt: skip
        logged = session.execute(text(
            "SELECT DISTINCT model_artifact_id, user_id FROM suggestion_log WHERE practice_id = :p "
            "AND id = ANY(:ids)"), {"p": practice, "ids": [s.suggestion_id for s in suggestions]}).all()  # fmt: skip
        assert logged == [(trained[0].artifact.id, user_id)]  # from the work-session model, for this user
        # The care episode counts the check-in once, though VetConnect also logged it as an event.
        episode = care_episode_log(session, [practice]).filter(pl.col("appointment_id") == appointment_id)
        assert episode["activity"].to_list().count("check_in") == 1
        assert episode["activity"].to_list().count("booking_made") == 1
        # The session is over once its last event is more than the gap ago.
        later = dt.datetime.now(dt.UTC) + SESSION_GAP + dt.timedelta(minutes=5)
        assert serving._for_work_session(session, context, user_id, now=later) is None
        session.rollback()
