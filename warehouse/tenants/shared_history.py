"""Reading the shared resources back: the franchise's list, the value each practice works with (the franchise's
or its own), and the version history of an item (who, when, old -> new per field) from ``shared_resource_change``.

Pages lay out the frames built here; every value in them is already in its Dutch written form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.schema.operations import SharedResourceChange
from warehouse.schema.tenancy import AppUser, Tenant
from warehouse.tenants.shared_edits import franchise_practices
from warehouse.tenants.shared_fields import ACTIVE, RESOURCES, SharedResource

# Columns every version carries that say nothing about the item itself.
BOOKKEEPING = frozenset({"franchise_id", "practice_id", "id", "created_at", "updated_at", "updated_by"})
FRANCHISE_VALUE = "franchise value"  # how an override's "use the franchise's" (NULL) reads


def item_list(session: Session, key: str, franchise_id: int) -> pl.DataFrame:
    """The franchise's items of a resource, switched-off ones last: id, then each field under its label."""
    resource = RESOURCES[key]
    model: Any = resource.item
    items = session.scalars(
        select(model).where(model.franchise_id == franchise_id).order_by(model.active.desc(), model.code)
    )
    fields = (*resource.fields, ACTIVE)
    rows = [{"id": i.id, **{f.label: f.show(getattr(i, f.column)) for f in fields}} for i in items]
    return pl.DataFrame(rows, schema={"id": pl.Int64, **{f.label: pl.String for f in fields}}, orient="row")


@dataclass(frozen=True)
class PracticeValue:
    """One overridable field of an item at one practice: the franchise's value, the practice's own (None: it
    uses the franchise's) and the one it works with."""

    practice_id: int
    practice: str
    column: str
    franchise: Any
    own: Any
    effective: Any


def _effective_values(
    session: Session, resource: SharedResource, franchise_id: int, item: Any, practices: list[Tenant]
) -> list[PracticeValue]:
    model: Any = resource.override
    fk = getattr(model, resource.item_fk)
    overrides = {o.practice_id: o for o in session.scalars(select(model).where(
        model.practice_id.in_([p.id for p in practices]), fk == item.id))}  # fmt: skip
    values = []
    for practice in practices:
        override = overrides.get(practice.id)
        for field in resource.overridable:
            own = getattr(override, field.column, None)
            franchise = getattr(item, field.column)
            if field.column == "active":  # a practice can only switch off what the franchise offers
                effective = franchise and own is not False
            else:
                effective = franchise if own is None else own
            values.append(PracticeValue(practice.id, practice.name, field.column, franchise, own, effective))
    return values


def effective_per_practice(session: Session, key: str, franchise_id: int, item_id: int) -> pl.DataFrame:
    """For every practice of the franchise (that the session sees): the value it works with per overridable
    field, and which of them are its own rather than the franchise's."""
    resource = RESOURCES[key]
    item = session.get(resource.item, (franchise_id, item_id))
    if item is None:
        return pl.DataFrame()
    practices = franchise_practices(session, franchise_id)
    values = _effective_values(session, resource, franchise_id, item, practices)
    labels = {f.column: f for f in resource.overridable}
    rows = []
    for practice in practices:
        mine = [v for v in values if v.practice_id == practice.id]
        rows.append({
            "Practice": practice.name,
            **{labels[v.column].label: labels[v.column].show(v.effective) for v in mine},
            "Own values": ", ".join(labels[v.column].label for v in mine if v.own is not None) or "none",
        })  # fmt: skip
    return pl.DataFrame(rows)


def practice_values(session: Session, key: str, practice_id: int) -> pl.DataFrame:
    """Every item of the practice's franchise as this practice has it: per overridable field the franchise's
    value and the practice's own ("–" when it uses the franchise's)."""
    resource = RESOURCES[key]
    practice = session.get(Tenant, practice_id)
    if practice is None:
        return pl.DataFrame()
    model: Any = resource.item
    rows = []
    for item in session.scalars(select(model).where(model.franchise_id == practice.franchise_id,
                                                    model.active).order_by(model.code)):  # fmt: skip
        row: dict[str, object] = {"id": item.id, "Code": item.code, "Name": _name(item)}
        values = _effective_values(session, resource, practice.franchise_id, item, [practice])
        for value in values:
            field = resource.field(value.column)
            row[f"{field.label} (franchise)"] = field.show(value.franchise)
            row[f"{field.label} (here)"] = field.show(value.effective)
        row["Own values"] = "yes" if any(v.own is not None for v in values) else "no"
        rows.append(row)
    return pl.DataFrame(rows)


def _name(item: Any) -> str:
    return getattr(item, "name", None) or item.subject


def _describe(resource: SharedResource, change: SharedResourceChange) -> str:
    """ "Price excl. VAT € 45,00 → € 47,00; Offered yes → no": each changed field, old -> new, as written."""
    override = change.practice_id is not None
    old, new = change.old or {}, change.new or {}
    if change.operation == "DELETE" and override:
        return "own values removed: the franchise's apply again"
    if change.operation == "DELETE":
        return "deleted"
    order = [f.column for f in (*resource.fields, *resource.overridable, ACTIVE)]
    columns = sorted(
        (
            c
            for c in (new or old)
            if c not in BOOKKEEPING and c != resource.item_fk and old.get(c) != new.get(c)
        ),
        key=lambda c: order.index(c) if c in order else len(order),
    )  # in the form's order (jsonb keeps its keys by length)
    parts = []
    for column in columns:
        try:
            field = resource.field(column)
        except StopIteration:  # a column no form edits (a medicine's species…): shown as stored
            label, show = column.replace("_", " "), (lambda v: fmt.EMPTY if v is None else str(v))
        else:
            label, show = field.label, field.show

        def written(value: Any, show: Any = show) -> str:
            return FRANCHISE_VALUE if value is None and override else show(value)

        parts.append(f"{label} {written(old.get(column))} → {written(new.get(column))}"
                     if change.operation == "UPDATE" else f"{label} {written(new.get(column))}")  # fmt: skip
    prefix = {"INSERT": "created: " if not override else "own values set: ", "UPDATE": ""}[change.operation]
    return prefix + ("; ".join(parts) or "no field changed")


def item_history(
    session: Session, key: str, franchise_id: int, item_id: int, *, practice_id: int | None = None
) -> pl.DataFrame:
    """Every version of a franchise item and of the practices' overrides of it, newest first: when (a UTC
    timestamp; pages show it in local time), by whom (their name), where ("Franchise" or the practice) and what
    changed, old -> new. With ``practice_id``, only that practice's overrides beside the franchise's changes."""
    resource = RESOURCES[key]
    c = SharedResourceChange
    franchise_table = resource.item.__tablename__  # type: ignore[attr-defined]
    override_table = resource.override.__tablename__  # type: ignore[attr-defined]
    of_item = (
        ((c.table_name == franchise_table) & (c.row_key["id"].astext == str(item_id)))
        | ((c.table_name == override_table) & (c.row_key[resource.item_fk].astext == str(item_id)))
    )  # fmt: skip
    query = select(c, AppUser.full_name, Tenant.name).outerjoin(AppUser, AppUser.id == c.changed_by)
    query = query.outerjoin(Tenant, Tenant.id == c.practice_id).where(c.franchise_id == franchise_id, of_item)
    if practice_id is not None:
        query = query.where((c.practice_id.is_(None)) | (c.practice_id == practice_id))
    rows = [
        {"at": change.changed_at, "by": who or ("system" if change.changed_by is None else f"user {change.changed_by}"),
         "where": "Franchise" if change.practice_id is None else (where or f"practice {change.practice_id}"),
         "change": _describe(resource, change)}
        for change, who, where in session.execute(query.order_by(c.changed_at.desc(), c.id.desc()))
    ]  # fmt: skip
    schema = {"at": pl.Datetime("us", "UTC"), "by": pl.String, "where": pl.String, "change": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def history_table(history: pl.DataFrame, tz: ZoneInfo = fmt.DEFAULT_TZ) -> pl.DataFrame:
    """The history with labelled columns and the time in Dutch local form (``3 dec 2026 09:05``)."""
    return history.select(
        pl.col("at").map_elements(lambda t: fmt.date_time(t, tz), return_dtype=pl.String).alias("When"),
        pl.col("by").alias("By"), pl.col("where").alias("Where"), pl.col("change").alias("Change"),
    )  # fmt: skip
