"""Which warehouse practice mirrors which Animana practice (``tenant.animana_practice_id``): listing the linked
practices, and linking one (onboarding, `vetconnect tenants link-animana`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, text

from connectors.animana.client import AnimanaClient
from warehouse.kernel.tenancy import system_session


@dataclass(frozen=True)
class LinkedPractice:
    """A warehouse practice and the Animana practice it mirrors."""

    practice_id: int
    franchise_id: int
    code: str
    animana_id: int


class LinkError(Exception):
    """A practice that cannot be linked as asked: unknown practice code, an id Animana does not know, or an id
    another practice mirrors already."""


def linked_practices(admin_engine: Engine, codes: Sequence[str] | None = None) -> list[LinkedPractice]:
    """Practices linked to Animana (``tenant.animana_practice_id`` set), optionally only ``codes``. Listing
    across practices is a cross-tenant read, so it goes through the audited system session."""
    with system_session(admin_engine, reason="animana sync: list linked practices") as session:
        rows = session.execute(
            text(
                "SELECT id, franchise_id, code, animana_practice_id FROM tenant WHERE kind = 'practice' "
                "AND animana_practice_id IS NOT NULL AND offboarded_at IS NULL ORDER BY id"
            )
        ).all()
    found = [LinkedPractice(r.id, r.franchise_id, r.code, int(r.animana_practice_id)) for r in rows]
    if codes is not None:
        wanted = set(codes)
        found = [p for p in found if p.code in wanted]
        missing = wanted - {p.code for p in found}
        if missing:
            raise LookupError(f"not linked to Animana (or unknown): {', '.join(sorted(missing))}")
    return found


def link_practice(
    admin_engine: Engine, client: AnimanaClient, code: str, animana_practice_id: int
) -> LinkedPractice:
    """Onboarding: link the warehouse practice ``code`` to the Animana practice ``animana_practice_id``, which
    the API must list and no other (live) practice may mirror already. Linking a practice to the id it has
    changes nothing; linking it to another id moves it. Raises `LinkError` with the reason."""
    if animana_practice_id not in {p.id for p in client.practices()}:
        raise LinkError(f"Animana has no practice with id {animana_practice_id}")
    with system_session(admin_engine, reason=f"animana: link practice {code}") as session:
        # Links are made one at a time, so two practices cannot both take one id between check and update.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('animana: link practice'))"))
        practice = session.execute(
            text("SELECT id, franchise_id FROM tenant WHERE kind = 'practice' AND code = :code"),
            {"code": code},
        ).one_or_none()
        if practice is None:
            raise LinkError(f"no practice with code {code!r}")
        other = session.execute(
            text(
                "SELECT code FROM tenant WHERE kind = 'practice' AND animana_practice_id = :aid "
                "AND offboarded_at IS NULL AND id <> :id ORDER BY id LIMIT 1"
            ),
            {"aid": str(animana_practice_id), "id": practice.id},
        ).scalar()
        if other is not None:
            raise LinkError(f"Animana practice {animana_practice_id} is already linked to practice {other!r}")
        session.execute(
            text("UPDATE tenant SET animana_practice_id = :aid WHERE id = :id"),
            {"aid": str(animana_practice_id), "id": practice.id},
        )
    return LinkedPractice(practice.id, practice.franchise_id, code, animana_practice_id)
