"""Changing the shared resources without SQL: the franchise admin creates, edits and switches off the franchise's
items (price list, appointment types, vaccine protocols, reminder templates); a practice's manager sets or clears
the practice's own values for them (its override).

Who may: ``shared.manage`` at every practice of the franchise the session sees (a franchise admin holds it at all
of them), ``practice.overrides`` at the practice. The database adds the tenant boundary: RLS lets a session write
only the items of its practices' franchises and only the overrides of its own practices.

Every change is versioned old -> new with who and when by the trigger of ``shared_resource_change`` (read back by
``shared_history``), and an override, being practice data, is in the practice's audit chain as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.integration.modes import mode_of
from warehouse.kernel import formatting as fmt
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import PRACTICE_OVERRIDES, SHARED_RESOURCES_MANAGE, Actor, require
from warehouse.tenants.shared_fields import (
    RESOURCES,
    Field,
    SharedResource,
    SharedResourceError,
    SharedResourceInvalid,
    parse_fields,
)


def franchise_practices(session: Session, franchise_id: int) -> list[Tenant]:
    """The franchise's practices this session sees, by name."""
    return list(session.scalars(select(Tenant).where(
        Tenant.kind == "practice", Tenant.franchise_id == franchise_id, Tenant.offboarded_at.is_(None),
    ).order_by(Tenant.name)))  # fmt: skip


def managed_franchises(session: Session, actor: Actor) -> dict[int, str]:
    """Franchise id -> name of the franchises whose shared resources the actor may change here."""
    franchises = session.scalars(select(Tenant).where(Tenant.kind == "franchise").order_by(Tenant.name))
    return {
        f.id: f.name
        for f in franchises
        if (practices := franchise_practices(session, f.id))
        and all(actor.may(SHARED_RESOURCES_MANAGE, p.id) for p in practices)
    }


def _require_manage(session: Session, actor: Actor, franchise_id: int) -> None:
    practices = franchise_practices(session, franchise_id)
    if not practices:
        raise SharedResourceError("franchise", f"No practice of franchise {franchise_id} is visible to you.")
    for practice in practices:
        require(actor, SHARED_RESOURCES_MANAGE, practice.id)


def _resource(key: str) -> SharedResource:
    if key not in RESOURCES:
        raise SharedResourceError("resource", f"There is no shared resource '{key}'.")
    return RESOURCES[key]


def _item(session: Session, resource: SharedResource, franchise_id: int, item_id: int, *, lock: bool) -> Any:
    model = resource.item
    query = select(model).where(model.franchise_id == franchise_id, model.id == item_id)  # type: ignore[attr-defined]
    item = session.scalar(query.with_for_update() if lock else query)
    if item is None:
        raise SharedResourceError("item", f"The franchise has no {resource.singular} {item_id}.")
    return item


def _check_code_free(
    session: Session, resource: SharedResource, franchise_id: int, code: str, item_id: int | None
) -> None:
    """Codes are unique per franchise regardless of case: ``VACC`` beside ``vacc`` would be told apart by no one."""
    model: Any = resource.item
    query = select(model.name if hasattr(model, "name") else model.subject).where(
        model.franchise_id == franchise_id, func.lower(model.code) == code.lower()
    )
    if item_id is not None:
        query = query.where(model.id != item_id)
    if (taken := session.scalar(query.limit(1))) is not None:
        raise SharedResourceInvalid({"code": f"Code {code} is already used for {taken}."})


def form_value(field: Field, value: Any) -> object:
    """A stored value as its form field shows it for editing: money as ``1.250,00``, numbers as digits."""
    if value is None:
        return None if field.column == "active" else ""
    if field.column == "price_cents":
        return fmt.number(value / 100, 2)
    if isinstance(value, bool) or field.choices:
        return value
    return str(value)


def item_form(session: Session, key: str, franchise_id: int, item_id: int) -> dict[str, object]:
    """The franchise item's editable fields as the edit form starts from them."""
    resource = _resource(key)
    item = _item(session, resource, franchise_id, item_id, lock=False)
    return {f.column: form_value(f, getattr(item, f.column)) for f in resource.fields}


def create_item(
    session: Session, actor: Actor, key: str, *, franchise_id: int, values: Mapping[str, object]
) -> int:
    """Add an item to the franchise's list (offered at every practice until switched off); returns its id.
    All fields are checked first and each refusal named at its field; nothing is written then."""
    resource = _resource(key)
    _require_manage(session, actor, franchise_id)
    parsed = parse_fields(resource.fields, dict(values))
    _check_code_free(session, resource, franchise_id, parsed["code"], None)
    item = resource.item(franchise_id=franchise_id, updated_by=actor.user_id, **parsed)
    session.add(item)
    session.flush()
    return item.id


def edit_item(
    session: Session, actor: Actor, key: str, *, franchise_id: int, item_id: int, values: Mapping[str, object]
) -> dict[str, tuple[Any, Any]]:
    """Change a franchise item; returns what changed (column -> (old, new)), empty when nothing did."""
    resource = _resource(key)
    _require_manage(session, actor, franchise_id)
    parsed = parse_fields(resource.fields, dict(values))
    item = _item(session, resource, franchise_id, item_id, lock=True)
    _check_code_free(session, resource, franchise_id, parsed["code"], item_id)
    changed = {c: (getattr(item, c), v) for c, v in parsed.items() if getattr(item, c) != v}
    if changed:
        for column, (_, new) in changed.items():
            setattr(item, column, new)
        item.updated_by = actor.user_id
        session.flush()
    return changed


def set_item_active(
    session: Session, actor: Actor, key: str, *, franchise_id: int, item_id: int, active: bool
) -> None:
    """Switch a franchise item off (no practice offers it any more; what used it keeps it) or on again."""
    resource = _resource(key)
    _require_manage(session, actor, franchise_id)
    item = _item(session, resource, franchise_id, item_id, lock=True)
    if item.active != active:
        item.active, item.updated_by = active, actor.user_id
        session.flush()


def _franchise_of(session: Session, practice_id: int) -> int:
    franchise_id = session.scalar(
        select(Tenant.franchise_id).where(Tenant.id == practice_id, Tenant.kind == "practice")
    )
    if franchise_id is None:
        raise SharedResourceError("practice", f"No practice {practice_id} is visible to you.")
    return franchise_id


def _require_own_prices(session: Session, resource: SharedResource, practice_id: int) -> None:
    """A practice linked to Animana whose billing is not native takes its prices from Animana: the sync writes them
    as the practice's values, so one set here would be put back by the next sync without anyone being told."""
    if resource.key != "prices":
        return
    linked = session.scalar(select(Tenant.animana_practice_id).where(Tenant.id == practice_id))
    if linked is not None and mode_of(session, practice_id, "invoices") != "native":
        raise SharedResourceError(
            "price_cents",
            "This practice's prices come from Animana while its billing is not native: change them in Animana "
            "(the next sync brings them here), or cut billing over first.",
        )


def _override(session: Session, resource: SharedResource, practice_id: int, item_id: int) -> Any:
    model: Any = resource.override
    return session.scalar(
        select(model)
        .where(model.practice_id == practice_id, getattr(model, resource.item_fk) == item_id)
        .with_for_update()
    )


def override_form(session: Session, key: str, practice_id: int, item_id: int) -> dict[str, object]:
    """The practice's own values for the item as the override form starts from them ('' = the franchise's;
    ``active`` True unless the practice switched the item off)."""
    resource = _resource(key)
    override = _override(session, resource, practice_id, item_id)
    form = {f.column: form_value(f, getattr(override, f.column, None)) for f in resource.overridable}
    if resource.has_active_override:
        form["active"] = override is None or override.active is not False
    return form


def parse_override(resource: SharedResource, values: Mapping[str, object]) -> dict[str, Any]:
    """The practice's own values: an empty field means "the franchise's value" (NULL); ``active`` False
    switches the item off at the practice, anything else leaves it as the franchise has it (NULL)."""
    given = {f.column: values.get(f.column) for f in resource.overridable if f.column != "active"}
    filled = tuple(
        f for f in resource.overridable if f.column in given and str(given[f.column] or "").strip()
    )
    parsed: dict[str, Any] = dict.fromkeys(given)
    parsed.update(parse_fields(filled, given))
    if resource.has_active_override:
        parsed["active"] = False if values.get("active") is False else None
    return parsed


def set_override(
    session: Session, actor: Actor, key: str, *, practice_id: int, item_id: int, values: Mapping[str, object]
) -> bool:
    """Set the practice's own values for a franchise item (all fields checked first, each refusal at its field).
    With every field back to the franchise's value the override is removed. Returns whether one remains."""
    resource = _resource(key)
    require(actor, PRACTICE_OVERRIDES, practice_id)
    _require_own_prices(session, resource, practice_id)
    parsed = parse_override(resource, values)
    franchise_id = _franchise_of(session, practice_id)
    _item(session, resource, franchise_id, item_id, lock=False)
    override = _override(session, resource, practice_id, item_id)
    if all(v is None for v in parsed.values()):
        if override is not None:
            session.delete(override)
            session.flush()
        return False
    if override is None:
        override = resource.override(
            practice_id=practice_id, franchise_id=franchise_id, **{resource.item_fk: item_id}
        )
        session.add(override)
    changed = any(getattr(override, c, None) != v for c, v in parsed.items())
    if changed:
        for column, value in parsed.items():
            setattr(override, column, value)
        override.updated_by = actor.user_id
    session.flush()
    return True


def clear_override(session: Session, actor: Actor, key: str, *, practice_id: int, item_id: int) -> bool:
    """Back to the franchise's values for this item at the practice; returns whether there was an override."""
    resource = _resource(key)
    require(actor, PRACTICE_OVERRIDES, practice_id)
    _require_own_prices(session, resource, practice_id)
    override = _override(session, resource, practice_id, item_id)
    if override is None:
        return False
    session.delete(override)
    session.flush()
    return True
