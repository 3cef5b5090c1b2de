"""Model artefacts in the warehouse (``model_artifact``, franchise RLS) and the suggestion log (practice RLS).

This module stores and fetches bytes and JSON; it knows nothing of scikit-learn. ``models.artifacts`` builds
and verifies the artefacts (the hash is checked on every load).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from warehouse.schema.models import ModelArtifact, SuggestionLog


@dataclass(frozen=True)
class StoredArtifact:
    id: int
    franchise_id: int
    kind: str
    version: int
    status: str
    sha256: str
    manifest: dict[str, Any]
    blob: bytes
    metrics: dict[str, Any]


def _stored(row: ModelArtifact) -> StoredArtifact:
    return StoredArtifact(row.id, row.franchise_id, row.kind, row.version, row.status, row.sha256, row.manifest,
                          row.blob, row.metrics)  # fmt: skip


def save_candidate(
    session: Session,
    franchise_id: int,
    *,
    kind: str,
    blob: bytes,
    manifest: dict[str, Any],
    sha256: str,
    metrics: dict[str, Any],
    data_from: dt.datetime | None,
    data_to: dt.datetime | None,
    code_version: str,
) -> StoredArtifact:
    """A new version (previous highest + 1) with status ``candidate``."""
    version = (
        session.scalar(
            select(func.max(ModelArtifact.version)).where(
                ModelArtifact.franchise_id == franchise_id, ModelArtifact.kind == kind
            )
        )
        or 0
    ) + 1
    row = ModelArtifact(franchise_id=franchise_id, kind=kind, version=version, status="candidate",
                        data_from=data_from, data_to=data_to, metrics=metrics, manifest=manifest,
                        code_version=code_version[:64], sha256=sha256, blob=blob)  # fmt: skip
    session.add(row)
    session.flush()
    return _stored(row)


def promoted(session: Session, franchise_id: int, kind: str) -> StoredArtifact | None:
    row = session.scalar(
        select(ModelArtifact).where(
            ModelArtifact.franchise_id == franchise_id,
            ModelArtifact.kind == kind,
            ModelArtifact.status == "promoted",
        )
    )
    return None if row is None else _stored(row)


def get(session: Session, franchise_id: int, artifact_id: int) -> StoredArtifact | None:
    row = session.get(ModelArtifact, (franchise_id, artifact_id))
    return None if row is None else _stored(row)


def decide(
    session: Session, franchise_id: int, artifact_id: int, *, promote: bool, decision: dict[str, Any]
) -> None:
    """Promote a candidate (the previous promoted model of its kind is retired) or reject it; why is recorded."""
    row = session.get(ModelArtifact, (franchise_id, artifact_id))
    if row is None:
        raise LookupError(f"no model artefact {artifact_id} in franchise {franchise_id}")
    now = dt.datetime.now(dt.UTC)
    if promote:
        session.execute(
            update(ModelArtifact)
            .where(
                ModelArtifact.franchise_id == franchise_id,
                ModelArtifact.kind == row.kind,
                ModelArtifact.status == "promoted",
            )  # fmt: skip
            .values(status="retired")
        )
        session.flush()
    row.status = "promoted" if promote else "rejected"
    row.decided_at = now
    row.decision = decision
    session.flush()


def history(session: Session, franchise_id: int, kind: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            ModelArtifact.id,
            ModelArtifact.version,
            ModelArtifact.status,
            ModelArtifact.created_at,
            ModelArtifact.metrics,
            ModelArtifact.code_version,
            ModelArtifact.sha256,
        )  # fmt: skip
        .where(ModelArtifact.franchise_id == franchise_id, ModelArtifact.kind == kind)
        .order_by(ModelArtifact.version)
    ).all()
    return [dict(r._mapping) for r in rows]


# --- suggestion log ---------------------------------------------------------------------------------------
def log_shown(session: Session, practice_id: int, suggestions: list[dict[str, Any]]) -> list[int]:
    """One row per suggestion shown (keys: user_id, patient_id, appointment_id, model_artifact_id, activity,
    action, rank, score); returns their ids, to be passed back with the outcome."""
    rows = [SuggestionLog(practice_id=practice_id, **s) for s in suggestions]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def log_outcome(session: Session, practice_id: int, suggestion_id: int, *, accepted: bool) -> None:
    result = session.execute(
        update(SuggestionLog)
        .where(
            SuggestionLog.practice_id == practice_id,
            SuggestionLog.id == suggestion_id,
            SuggestionLog.outcome == "shown",
        )  # fmt: skip
        .values(outcome="accepted" if accepted else "dismissed", outcome_at=func.now())
    )
    if result.rowcount != 1:
        raise LookupError(f"no open suggestion {suggestion_id} in practice {practice_id}")


def acceptance(session: Session, practice_ids: list[int], since: dt.datetime | None = None) -> dict[str, Any]:
    """Shown, accepted, dismissed and the acceptance rate (accepted / shown) over the visible practices."""
    query = select(SuggestionLog.outcome, func.count()).where(SuggestionLog.practice_id.in_(practice_ids))
    if since is not None:
        query = query.where(SuggestionLog.shown_at >= since)
    counts = dict(session.execute(query.group_by(SuggestionLog.outcome)).all())
    shown = sum(counts.values())
    accepted = counts.get("accepted", 0)
    return {"shown": shown, "accepted": accepted, "dismissed": counts.get("dismissed", 0),
            "acceptance_rate": accepted / shown if shown else None}  # fmt: skip
