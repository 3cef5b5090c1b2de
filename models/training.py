"""Training on the warehouse, per franchise, and the promotion rule.

A training run reads the franchise's data under RLS, evaluates with the chronological protocol, and stores the
model as a ``candidate`` artefact with its metrics. :func:`promotion_decision` then re-scores the candidate and
the currently promoted model on the *latest* holdout (the newest third of the cases, or of the appointments
whose outcome is known) and promotes only a candidate that is at least as good as the current model and — for
next-action — at least as good as the Markov baseline (for no-show: better-calibrated than the history-only
baseline).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import brier_score_loss, roc_auc_score
from sqlalchemy import text
from sqlalchemy.orm import Session

from models import artifacts
from models.eventlog import LogColumns, chronological_split, normalise
from models.next_action import NextActionModel, evaluate_next_action
from models.next_action.evaluate import score
from models.no_show.model import (
    NoShowModel,
    evaluate_no_show,
    features,
    history_matrix,
    holdout_cut,
    labelled,
)
from models.work_sessions import work_session_log
from warehouse.learning import model_store
from warehouse.learning.eventlog import appointment_frame, care_episode_log

# Next action on patient care episodes, next action on user work sessions (``models.work_sessions``), no-show.
WORK_SESSION = "next_action_work_session"
NEXT_ACTION_KINDS = ("next_action", WORK_SESSION)
KINDS = (*NEXT_ACTION_KINDS, "no_show")
CARE_ATTRS = ("species", "appointment_type")
# Next-action models learn from the last 18 months of cases before the latest appointment that has begun, so
# the chronological split trains on a year (every season) and holds out the latest six months. Older years add
# training time but no accuracy: on the demo world (VetPlus, same holdout, 45k prefixes) a model trained on all
# 2.5 years before the holdout scored top-1 0.8673 / 0.8669 (seeds 0/1), one trained on its last 12 months
# 0.8662, 16 months 0.8661, 8 months 0.8640 / 0.8645 (Markov 0.8408); fit 46 s -> 24 s.
NEXT_ACTION_HISTORY = dt.timedelta(days=548)


def care_log(session: Session, practice_ids: list[int], **window: Any) -> pl.DataFrame:
    """The warehouse's care episodes as a normalised event log (attributes: species, appointment type)."""
    raw = care_episode_log(session, practice_ids, **window)
    if raw.height == 0:
        return raw
    return normalise(raw, LogColumns("case_id", "activity", "timestamp", CARE_ATTRS))


def next_action_log(session: Session, kind: str, practice_ids: list[int]) -> pl.DataFrame:
    """The event log a next-action kind learns from: care episodes, or user work sessions, of the last
    :data:`NEXT_ACTION_HISTORY` (see :func:`history_start`)."""
    since = history_start(session, practice_ids)
    if kind == WORK_SESSION:
        return work_session_log(session, practice_ids, since=since)
    return care_log(session, practice_ids, since=since)


def history_start(session: Session, practice_ids: list[int]) -> dt.datetime | None:
    """:data:`NEXT_ACTION_HISTORY` before the latest appointment that has begun (booked future ones do not
    move the window); None when no appointment has begun yet (then the whole log is used)."""
    latest = session.scalar(
        text("SELECT max(starts_at) FROM appointment WHERE practice_id = ANY(:p) AND starts_at <= now()"),
        {"p": list(practice_ids)},
    )
    return None if latest is None else latest.astimezone(dt.UTC) - NEXT_ACTION_HISTORY


def practices_of(session: Session, franchise_id: int) -> list[int]:
    return list(session.scalars(text("SELECT id FROM tenant WHERE kind = 'practice' AND parent_id = :f"),
                                {"f": franchise_id}))  # fmt: skip


def franchise_of(session: Session, practice_id: int) -> int:
    found = session.scalar(
        text("SELECT parent_id FROM tenant WHERE id = :p AND kind = 'practice'"), {"p": practice_id}
    )
    if found is None:
        raise LookupError(f"no practice {practice_id}")
    return int(found)


@dataclass(frozen=True)
class TrainResult:
    artifact: model_store.StoredArtifact
    report: dict[str, Any]
    # What the model was evaluated on (the event log or the appointments), for the promotion check that follows
    # in the same session: it reads the same rows again otherwise.
    data: pl.DataFrame | None = None


def train(
    session: Session, franchise_id: int, kind: str, practice_ids: list[int] | None = None
) -> TrainResult:
    """Train ``kind`` on the franchise's practices (those visible in the session) and store a candidate."""
    practice_ids = practice_ids or practices_of(session, franchise_id)
    if kind in NEXT_ACTION_KINDS:
        log = next_action_log(session, kind, practice_ids)
        if log.height == 0 or log["case_id"].n_unique() < 10:
            cases = "care episodes" if kind == "next_action" else "user work sessions"
            raise ValueError(f"franchise {franchise_id}: too few {cases} to train a {kind} model")
        report, model = evaluate_next_action(log)
        estimator, state = model.estimator, model.state()
        window, data = (log["timestamp"].min(), log["timestamp"].max()), log
    elif kind == "no_show":
        frame = appointment_frame(session, practice_ids)
        report, ns_model = evaluate_no_show(frame)
        estimator, state = ns_model.estimators(), ns_model.state()
        window, data = (frame["starts_at"].min(), frame["starts_at"].max()), frame
    else:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    data_from, data_to = (_aware(w) for w in window)
    metadata = {"data_window": [str(data_from), str(data_to)], "metrics": _summary(kind, report),
                "franchise_id": franchise_id, "practice_ids": practice_ids}  # fmt: skip
    artifact = artifacts.build(kind, estimator, state, metadata)
    stored = model_store.save_candidate(
        session, franchise_id, kind=kind, blob=artifact.blob, manifest=artifact.manifest(), sha256=artifact.sha256,
        metrics=metadata["metrics"], data_from=data_from, data_to=data_to,
        code_version=artifact.metadata["code_version"],
    )  # fmt: skip
    return TrainResult(stored, report, data)


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _summary(kind: str, report: dict[str, Any]) -> dict[str, Any]:
    if kind in NEXT_ACTION_KINDS:
        keys = (
            "top1",
            "top3",
            "markov_top1",
            "markov_top3",
            "most_frequent_top1",
            "n_test_prefixes",
            "train_seconds",
        )
        return {k: report[k] for k in keys}
    return {"roc_auc": report["model"]["roc_auc"], "brier": report["model"]["brier"],
            "baseline_roc_auc": report["history_baseline"]["roc_auc"],
            "baseline_brier": report["history_baseline"]["brier"], "n_test": report["n_test"],
            "train_seconds": report["train_seconds"]}  # fmt: skip


# --- loading ----------------------------------------------------------------------------------------------
def load(stored: model_store.StoredArtifact) -> NextActionModel | NoShowModel:
    """Verify the hash (against the warehouse's ``sha256`` column) and rebuild the model."""
    key = (stored.kind, stored.sha256)
    cached = _LOADED.get(key)
    # A cache hit still needs the same bytes (memcmp, ~0.1 ms/MB): a row altered after it was first verified
    # is verified again, and refused.
    if cached is None or cached[0] != stored.blob:
        if len(_LOADED) >= 16:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED.pop(key, None)
        _LOADED[key] = (stored.blob, _load(stored.kind, stored.sha256, stored))
    return _LOADED[key][1]


# Loaded models by (kind, sha256) with the verified bytes; bounded.
_LOADED: dict[tuple[str, str], tuple[bytes, NextActionModel | NoShowModel]] = {}


def _load(kind: str, sha256: str, stored: model_store.StoredArtifact) -> NextActionModel | NoShowModel:
    manifest = stored.manifest
    artifact = artifacts.Artifact(manifest["kind"], stored.blob, manifest["state"], manifest["metadata"],
                                  manifest["sha256"])  # fmt: skip
    estimator = artifacts.load_estimator(artifact, expected_sha256=sha256, kind=kind)
    if kind in NEXT_ACTION_KINDS:
        return NextActionModel.from_parts(estimator, artifact.state)
    return NoShowModel.from_parts(estimator, artifact.state)


# --- promotion ----------------------------------------------------------------------------------------------
def promotion_decision(
    session: Session, franchise_id: int, candidate_id: int, trained: TrainResult | None = None
) -> dict[str, Any]:
    """Score candidate and current model on the latest holdout; ``passed`` says whether to promote.

    ``trained``: the run that just stored this candidate, in this session. Its data is the holdout's source
    (instead of reading the same rows again), and for next-action its evaluation *is* the candidate's score on
    that holdout (same split, same model), so it is not computed a second time."""
    candidate = model_store.get(session, franchise_id, candidate_id)
    if candidate is None:
        raise LookupError(f"no candidate {candidate_id}")
    current = model_store.promoted(session, franchise_id, candidate.kind)
    practice_ids = list(
        candidate.manifest["metadata"].get("practice_ids") or practices_of(session, franchise_id)
    )
    if trained is not None and trained.artifact.id != candidate_id:
        raise ValueError(f"the training run stored candidate {trained.artifact.id}, not {candidate_id}")
    data = None if trained is None else trained.data
    new_model = load(candidate)  # verifies the stored bytes against their hash
    old_model = load(current) if current is not None else None
    if candidate.kind in NEXT_ACTION_KINDS:
        log = data if data is not None else next_action_log(session, candidate.kind, practice_ids)
        train_part, holdout = chronological_split(log)
        if trained is not None and data is not None:
            new = trained.report
        else:
            new = score(new_model, train_part, holdout)  # type: ignore[arg-type]
        old = score(old_model, train_part, holdout) if old_model is not None else None  # type: ignore[arg-type]
        reasons = []
        if new["top1"] < new["markov_top1"]:
            reasons.append(f"top-1 {new['top1']} below the Markov baseline {new['markov_top1']}")
        if old is not None and new["top1"] < old["top1"]:
            reasons.append(f"top-1 {new['top1']} below the current model's {old['top1']}")
        figures = {"candidate_top1": new["top1"], "candidate_top3": new["top3"], "markov_top1": new["markov_top1"],
                   "current_top1": None if old is None else old["top1"], "n_holdout": new["n_test_prefixes"]}  # fmt: skip
    else:
        frame = (data if data is not None else appointment_frame(session, practice_ids)).sort("starts_at")
        cut = holdout_cut(frame)
        test = labelled(features(frame)).filter(pl.col("starts_at") >= cut)
        y = test["no_show"].to_numpy()
        p_new = new_model.estimator.predict_proba(new_model.matrix(test))[:, 1]  # type: ignore[union-attr]
        p_base = new_model.baseline.predict_proba(history_matrix(test))[:, 1]  # type: ignore[union-attr]
        figures = {"candidate_brier": _brier(y, p_new), "baseline_brier": _brier(y, p_base),
                   "candidate_auc": _auc(y, p_new), "n_holdout": len(y)}  # fmt: skip
        reasons = []
        if figures["candidate_brier"] > figures["baseline_brier"]:
            reasons.append("Brier score worse than the history-only baseline")
        if old_model is not None:
            p_old = old_model.estimator.predict_proba(old_model.matrix(test))[:, 1]  # type: ignore[union-attr]
            figures["current_brier"] = _brier(y, p_old)
            if figures["candidate_brier"] > figures["current_brier"]:
                reasons.append("Brier score worse than the current model's")
    return {"passed": not reasons, "reasons": reasons, "current_id": None if current is None else current.id,
            **figures}  # fmt: skip


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return round(float(brier_score_loss(y, p)), 6) if len(y) else float("nan")


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return round(float(roc_auc_score(y, p)), 4) if len(set(y.tolist())) == 2 else None


def decide(
    session: Session, franchise_id: int, candidate_id: int, trained: TrainResult | None = None
) -> dict[str, Any]:
    decision = promotion_decision(session, franchise_id, candidate_id, trained)
    model_store.decide(session, franchise_id, candidate_id, promote=decision["passed"], decision=decision)
    return decision
