"""What the app calls: next-action suggestions (hub), no-show risk (scheduling badge, practice dashboard),
and the suggestion outcome log. Every function takes a session opened under the user's access context
(``warehouse.kernel.tenancy.tenant_session``), so RLS decides what the models may read.

Each suggestion is a one-click action for the page to render: ``action`` names what to open and ``params``
pre-fills it (e.g. ``open_booking`` with the patient and an appointment type, ``review_lab_result``,
``create_invoice``). Pages call :func:`log_suggestion_outcome` with the suggestion's id when one is taken
(or dismissed); ``warehouse.learning.model_store.acceptance`` gives the acceptance rate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from models.eventlog import END
from models.next_action import NextActionModel
from models.no_show.model import NoShowModel, elevated
from models.training import WORK_SESSION, care_log, franchise_of, load
from models.work_sessions import SESSION_ATTRS, SESSION_GAP, actor_events, normalise_sessions, split_sessions
from warehouse.kernel.tenancy import AccessContext
from warehouse.learning import model_store
from warehouse.learning.eventlog import appointment_frame

# activity predicted → (action, label). Activities without an action (e.g. "no_show") are not suggested.
ACTIONS: dict[str, tuple[str, str]] = {
    "booking_made": ("open_booking", "Book an appointment"),
    "follow_up_booked": ("open_booking", "Book the follow-up"),
    "vaccination": ("open_booking", "Book the booster vaccination"),
    "check_in": ("check_in", "Check the patient in"),
    "consult": ("open_consult", "Start the consult"),
    "diagnosis": ("open_consult", "Record the diagnosis"),
    "lab_order": ("order_lab", "Order lab work"),
    "lab_result": ("review_lab_result", "Open the lab result"),
    "lab_result_reviewed": ("review_lab_result", "Review the lab result"),
    "prescription": ("open_consult", "Write the prescription"),
    "invoice": ("create_invoice", "Create the invoice"),
    "payment": ("take_payment", "Take the payment"),
    # what VetConnect's scheduling logs (user work sessions)
    "consult_started": ("open_consult", "Start the consult"),
    "consult_completed": ("open_consult", "Complete the consult"),
}

# A suggestion is an action the model finds reasonably likely. Without a floor, a patient whose latest visit is
# finished (the model gives the episode's end ~99 %) was shown the three "best" actions at 0.01-0.1 % each,
# read as "0%" on the card: noise dressed up as advice.
MIN_SCORE = 0.05


@dataclass(frozen=True)
class Suggestion:
    activity: str
    action: str
    label: str
    score: float
    rank: int
    params: dict[str, Any] = field(default_factory=dict)
    suggestion_id: int | None = None  # the suggestion_log row, for log_suggestion_outcome
    basis: str = "care_episode"  # or "work_session": what the user will likely do next in their session


def _single_practice(session: Session, context: AccessContext, patient_id: int) -> int:
    found = session.scalar(
        text("SELECT practice_id FROM patient WHERE id = :p AND practice_id = ANY(:practices)"),
        {"p": patient_id, "practices": list(context.practice_ids)},
    )
    if found is None:
        raise LookupError(f"patient {patient_id} is not visible in this context")
    return int(found)


def _patient_of_user(session: Session, context: AccessContext, user_id: int) -> int | None:
    """The patient the user is working on: their most recent event today that names a patient."""
    return session.scalar(
        text(
            "SELECT patient_id FROM event WHERE practice_id = ANY(:practices) AND actor_user_id = :u "
            "AND patient_id IS NOT NULL AND occurred_at >= now() - interval '12 hours' "
            "ORDER BY occurred_at DESC LIMIT 1"
        ),
        {"practices": list(context.practice_ids), "u": user_id},
    )


def suggest_next_actions(
    session: Session,
    context: AccessContext,
    *,
    patient_id: int | None = None,
    user_id: int | None = None,
    k: int = 3,
    log: bool = True,
) -> list[Suggestion]:
    """Top ``k`` next actions. For a patient: from their latest care episode (care-episode model). For a user:
    what they will likely do next in their current work session (work-session model) when they have one,
    else for the patient they are working on. Empty when there is no promoted model or no history. Shown
    suggestions are logged when ``log``."""
    if patient_id is None and user_id is not None:
        for_session = _for_work_session(session, context, user_id)
        if for_session is not None:
            stored, ranked, params = for_session
            return _pick(session, stored, ranked, params, user_id or context.user_id, k, log, "work_session")
        patient_id = _patient_of_user(session, context, user_id)
    if patient_id is None:
        return []
    practice_id = _single_practice(session, context, patient_id)
    stored = model_store.promoted(session, franchise_of(session, practice_id), "next_action")
    if stored is None:
        return []
    model = load(stored)
    assert isinstance(model, NextActionModel)
    episodes = care_log(session, [practice_id], patient_id=patient_id)
    if episodes.height == 0:
        return []
    latest = episodes.group_by("case_id").agg(pl.col("timestamp").max()).sort("timestamp")["case_id"][-1]
    case = episodes.filter(pl.col("case_id") == latest).sort("seq")
    appointment_id = int(latest.split(":")[1])
    last = case.row(-1, named=True)
    ranked = model.suggest(case["activity"].to_list(), case["timestamp"].to_list(),
                           {a: last[f"attr_{a}"] for a in ("species", "appointment_type")}, k=len(model.classes))  # fmt: skip
    params = {"patient_id": patient_id, "appointment_id": appointment_id, "practice_id": practice_id,
              "appointment_type": last["attr_appointment_type"] or None}  # fmt: skip
    return _pick(session, stored, ranked, params, user_id or context.user_id, k, log)


def _for_work_session(
    session: Session, context: AccessContext, user_id: int, now: dt.datetime | None = None
) -> tuple[model_store.StoredArtifact, list[tuple[str, float]], dict[str, Any]] | None:
    """The work-session model's ranking for the user's current session: one whose last event is at most
    ``SESSION_GAP`` ago and that names a patient (the suggestions act on it). ``None`` when there is no such
    session or no promoted work-session model."""
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=16)  # a working day; sessions never cross a local day
    events = actor_events(
        session, list(context.practice_ids), since=since, until=now + dt.timedelta(seconds=1)
    )
    events = events.filter(pl.col("actor") == f"user:{user_id}")
    if events.height == 0 or events["timestamp"].max() < now - SESSION_GAP:
        return None
    sessions = normalise_sessions(split_sessions(events))
    current = sessions.filter(pl.col("case_id") == sessions["case_id"][-1])
    with_patient = current.filter(pl.col("patient_id").is_not_null())
    if with_patient.height == 0:
        return None
    practice_id = int(current["practice_id"][-1])
    stored = model_store.promoted(session, franchise_of(session, practice_id), WORK_SESSION)
    if stored is None:
        return None
    model = load(stored)
    assert isinstance(model, NextActionModel)
    last = current.row(-1, named=True)
    focus = with_patient.row(-1, named=True)
    ranked = model.suggest(current["activity"].to_list(), current["timestamp"].to_list(),
                           {a: last[f"attr_{a}"] for a in SESSION_ATTRS}, k=len(model.classes))  # fmt: skip
    params = {"patient_id": focus["patient_id"], "appointment_id": focus["appointment_id"],
              "practice_id": practice_id, "appointment_type": focus["attr_appointment_type"] or None}  # fmt: skip
    return stored, ranked, params


def _pick(
    session: Session,
    stored: model_store.StoredArtifact,
    ranked: list[tuple[str, float]],
    params: dict[str, Any],
    user_id: int | None,
    k: int,
    log: bool,
    basis: str = "care_episode",
) -> list[Suggestion]:
    """The ``k`` best-ranked activities that are one-click actions with a probability of at least
    ``MIN_SCORE``, logged as shown when ``log``."""
    picked: list[Suggestion] = []
    for activity, p in ranked:
        if activity == END or activity not in ACTIONS or p < MIN_SCORE or len(picked) == k:
            continue
        action, label = ACTIONS[activity]
        extra = {"appointment_type": "vaccination"} if activity == "vaccination" else {}
        picked.append(Suggestion(activity, action, label, round(p, 4), len(picked) + 1, {**params, **extra},
                                 basis=basis))  # fmt: skip
    if log and picked:
        ids = model_store.log_shown(session, params["practice_id"], [
            {"user_id": user_id, "patient_id": params["patient_id"], "appointment_id": params["appointment_id"],
             "model_artifact_id": stored.id, "activity": s.activity, "action": s.action, "rank": s.rank,
             "score": s.score}
            for s in picked
        ])  # fmt: skip
        picked = [Suggestion(**{**s.__dict__, "suggestion_id": i}) for s, i in zip(picked, ids, strict=True)]
    return picked


def log_suggestion_outcome(session: Session, practice_id: int, suggestion_id: int, *, accepted: bool) -> None:
    model_store.log_outcome(session, practice_id, suggestion_id, accepted=accepted)


@dataclass(frozen=True)
class NoShowRisk:
    p_no_show: float
    base_rate: float  # the practice's no-show rate the model was trained on

    @property
    def elevated(self) -> bool:
        """Worth a warning: clearly above what any appointment of the practice risks (``no_show.elevated``)."""
        return elevated(self.p_no_show, self.base_rate)


def no_show_risks(
    session: Session, appointment_ids: Sequence[int], *, practice_ids: Sequence[int]
) -> dict[int, NoShowRisk]:
    """``appointment_id →`` its no-show risk with the practice's base rate (their clients' history is read
    too). Appointments of practices without a promoted no-show model are left out."""
    if not appointment_ids:
        return {}
    frame = appointment_frame(
        session, list(practice_ids), appointment_ids=appointment_ids, with_client_history=True
    )
    risks: dict[int, NoShowRisk] = {}
    for practice_id in frame["practice_id"].unique().to_list():
        stored = model_store.promoted(session, franchise_of(session, practice_id), "no_show")
        if stored is None:
            continue
        model = load(stored)
        assert isinstance(model, NoShowModel)
        rows = frame.filter(pl.col("practice_id") == practice_id)
        wanted = rows.filter(pl.col("appointment_id").is_in(list(appointment_ids)))
        result = model.predict(wanted, history=rows)
        base_rate = model.base_rate(practice_id)
        for appointment_id, p in result.select("appointment_id", "p_no_show").iter_rows():
            risks[appointment_id] = NoShowRisk(p, base_rate)
    return risks


def no_show_risk(
    session: Session, appointment_ids: Sequence[int], *, practice_ids: Sequence[int]
) -> dict[int, float]:
    """``appointment_id → P(no-show)`` (see :func:`no_show_risks`)."""
    risks = no_show_risks(session, appointment_ids, practice_ids=practice_ids)
    return {appointment_id: risk.p_no_show for appointment_id, risk in risks.items()}


def expected_no_shows(session: Session, practice_id: int, week_start: dt.date) -> dict[str, Any]:
    """Expected no-shows among the practice's booked appointments in the week starting ``week_start``
    (sum of the risks), with the number of appointments scored."""
    start = dt.datetime.combine(week_start, dt.time(), tzinfo=dt.UTC)
    ids = list(session.scalars(
        text("SELECT id FROM appointment WHERE practice_id = :p AND starts_at >= :s AND starts_at < :e "
             "AND status IN ('booked', 'checked_in')"),
        {"p": practice_id, "s": start, "e": start + dt.timedelta(days=7)},
    ))  # fmt: skip
    risks = no_show_risk(session, ids, practice_ids=[practice_id])
    return {
        "appointments": len(ids),
        "scored": len(risks),
        "expected_no_shows": round(sum(risks.values()), 2),
    }
