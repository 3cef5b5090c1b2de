"""The gateway's switch: per practice and module, where a staff write goes (architecture §5).

``animana``: Animana is the back end; a write is sent to Animana before it commits (write-through).
``hybrid``: VetConnect owns the write; it commits here and the outbox writes it back. ``native``: Animana is
frozen history for the module; nothing is captured, sent or read. A switch is confirmed, permitted at the
practice and audited with both modes."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.integration.errors import IntegrationError
from warehouse.integration.tables import MODULE_LABELS
from warehouse.schema.tenancy import MODES, MODULES, PracticeModuleMode
from warehouse.security.permissions import INTEGRATION_MANAGE, Actor, require

MODE_LABELS = {
    "animana": "Animana (VetConnect schrijft via Animana)",
    "hybrid": "Hybride (VetConnect schrijft, Animana wordt bijgewerkt)",
    "native": "VetConnect (Animana is archief)",
}


def modes(session: Session, practice_id: int) -> dict[str, str]:
    """The practice's mode per module (``animana`` for a module without a row, as onboarding would set it)."""
    rows = session.execute(
        select(PracticeModuleMode.module, PracticeModuleMode.mode).where(
            PracticeModuleMode.practice_id == practice_id
        )
    ).all()
    found = dict(rows)
    return {module: found.get(module, "animana") for module in MODULES}


def mode_of(session: Session, practice_id: int, module: str) -> str:
    return modes(session, practice_id)[module]


def set_mode(
    session: Session, actor: Actor, *, practice_id: int, module: str, mode: str, confirmed: bool
) -> str:
    """Switch ``module`` of the practice to ``mode``; returns the mode it had. Writes already captured keep
    their outbox entries (a switch to native leaves them for a person to see, never drops them)."""
    if module not in MODULES:
        raise IntegrationError("module", f"Onbekende module {module!r}; kies uit {', '.join(MODULES)}.")
    if mode not in MODES:
        raise IntegrationError("mode", f"Onbekende modus {mode!r}; kies uit {', '.join(MODES)}.")
    require(actor, INTEGRATION_MANAGE, practice_id)
    if not confirmed:
        raise IntegrationError(
            "confirmed", f"Bevestig het omzetten van {MODULE_LABELS[module]} naar {MODE_LABELS[mode]}."
        )
    # The row lock serialises two managers switching the same module at once.
    previous = session.execute(
        text("SELECT mode FROM practice_module_mode WHERE practice_id = :p AND module = :m FOR UPDATE"),
        {"p": practice_id, "m": module},
    ).scalar_one_or_none()
    if previous == mode:
        return previous
    session.execute(
        text(
            "INSERT INTO practice_module_mode (practice_id, module, mode, changed_at, changed_by) "
            "VALUES (:p, :m, :mode, now(), :user) ON CONFLICT (practice_id, module) "
            "DO UPDATE SET mode = EXCLUDED.mode, changed_at = now(), changed_by = EXCLUDED.changed_by"
        ),
        {"p": practice_id, "m": module, "mode": mode, "user": actor.user_id},
    )
    session.execute(
        text(
            "INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash) "
            "VALUES (:p, 'update', 'integration_mode', NULL, "
            "jsonb_build_object('module', CAST(:m AS text), 'from', CAST(:old AS text), 'to', CAST(:new AS text)), '', '')"
        ),
        {"p": practice_id, "m": module, "old": previous or "animana", "new": mode},
    )
    return previous or "animana"
