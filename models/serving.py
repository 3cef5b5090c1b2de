"""What the app calls: next-action suggestions (hub), no-show risk (scheduling badge, practice dashboard),
and the suggestion outcome log. Every function takes a session opened under the user's access context
(``warehouse.tenancy.tenant_session``), so RLS decides what the models may read.

Each suggestion is a one-click action for the page to render: ``action`` names what to open and ``params``
pre-fills it (e.g. ``open_booking`` with the patient and an appointment type, ``review_lab_result``,
``create_invoice``). Pages call :func:`log_suggestion_outcome` with the suggestion's id when one is taken
(or dismissed); ``warehouse.model_store.acceptance`` gives the acceptance rate.
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
from models.no_show.model import NoShowModel
from models.training import care_log, franchise_of, load
from warehouse import model_store
from warehouse.eventlog import appointment_frame
from warehouse.tenancy import AccessContext

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
}


@dataclass(frozen=True)
class Suggestion:
    activity: str
    action: str
    label: str
    score: float
    rank: int
    params: dict[str, Any] = field(default_factory=dict)
    suggestion_id: int | None = None  # the suggestion_log row, for log_suggestion_outcome


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
    """Top ``k`` next actions for a patient's latest care episode (or the patient a user is working on).
    Empty when there is no promoted model or no history. Shown suggestions are logged when ``log``."""
    if patient_id is None and user_id is not None:
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
    picked: list[Suggestion] = []
    for activity, p in ranked:
        if activity == END or activity not in ACTIONS or len(picked) == k:
            continue
        action, label = ACTIONS[activity]
        extra = {"appointment_type": "vaccination"} if activity == "vaccination" else {}
        picked.append(Suggestion(activity, action, label, round(p, 4), len(picked) + 1, {**params, **extra}))
    if log and picked:
        ids = model_store.log_shown(session, practice_id, [
            {"user_id": user_id or context.user_id, "patient_id": patient_id, "appointment_id": appointment_id,
             "model_artifact_id": stored.id, "activity": s.activity, "action": s.action, "rank": s.rank,
             "score": s.score}
            for s in picked
        ])  # fmt: skip
        picked = [Suggestion(**{**s.__dict__, "suggestion_id": i}) for s, i in zip(picked, ids, strict=True)]
    return picked


def log_suggestion_outcome(session: Session, practice_id: int, suggestion_id: int, *, accepted: bool) -> None:
    model_store.log_outcome(session, practice_id, suggestion_id, accepted=accepted)


def no_show_risk(
    session: Session, appointment_ids: Sequence[int], *, practice_ids: Sequence[int]
) -> dict[int, float]:
    """``appointment_id → P(no-show)`` for the given appointments (their clients' history is read too).
    Appointments of practices without a promoted no-show model are left out."""
    if not appointment_ids:
        return {}
    frame = appointment_frame(
        session, list(practice_ids), appointment_ids=appointment_ids, with_client_history=True
    )
    risks: dict[int, float] = {}
    for practice_id in frame["practice_id"].unique().to_list():
        stored = model_store.promoted(session, franchise_of(session, practice_id), "no_show")
        if stored is None:
            continue
        model = load(stored)
        assert isinstance(model, NoShowModel)
        rows = frame.filter(pl.col("practice_id") == practice_id)
        wanted = rows.filter(pl.col("appointment_id").is_in(list(appointment_ids)))
        result = model.predict(wanted, history=rows)
        risks.update(
            dict(zip(result["appointment_id"].to_list(), result["p_no_show"].to_list(), strict=True))
        )
    return risks


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
