"""Shared resources: the franchise admin keeps the franchise's price list (with VAT category), appointment types,
vaccine protocols and reminder templates — add, edit, switch off — and sees for each item the value every
practice works with and its version history (who, when, old → new); and extends the franchise's coded diagnosis
list with terms of its own."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.components import diagnosis_list
from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.kernel.tenancy import tenant_session
from warehouse.security.permissions import SHARED_RESOURCES_MANAGE, NotPermitted
from warehouse.tenants import shared_edits as edits
from warehouse.tenants import shared_history as history
from warehouse.tenants.shared_fields import (
    RESOURCES,
    VAT_CATEGORIES,
    Field,
    SharedResource,
    SharedResourceInvalid,
)

state = st.session_state
if not ctx.may(SHARED_RESOURCES_MANAGE):
    st.error(f"Your role at {ctx.here()} cannot change the franchise's shared resources.")
    st.stop()
user = ctx.user()
actor = ctx.actor()
ctx.breadcrumbs("Shared resources")
st.title("Shared resources")
st.caption(
    "Defined once for the franchise; each practice works with these values unless its manager set its own."
)


def franchise_session() -> Any:
    """The franchise's lists concern all its practices at once, so this page works with every practice the user
    has (as the franchise dashboard does), not only the one chosen in the switcher."""
    return tenant_session(app_runtime().app_engine, user.context)


with franchise_session() as session:
    franchises = edits.managed_franchises(session, actor)
if not franchises:
    st.error("You manage the shared resources of no franchise.")
    st.stop()
franchise_id = st.selectbox("Franchise", list(franchises), format_func=franchises.get, key="shared.franchise")
if flash := state.pop("shared.flash", None):
    st.success(flash)

# What a new item's form starts from (a choice must start on one of its options).
NEW_DEFAULTS: dict[str, object] = {"kind": "service", "vat_rate_bp": 2100, "species": "dog", "channel": "email",
                                   "colour": "#4C78A8", "requires_vet": True}  # fmt: skip


def _label(field: Field, value: object) -> str:
    return VAT_CATEGORIES[value] if field.column == "vat_rate_bp" else str(value)  # type: ignore[index]


def _widget(resource: SharedResource, field: Field) -> None:
    key = f"shared.{resource.key}.f.{field.column}"
    if field.choices:
        st.selectbox(field.label, field.choices, key=key, format_func=lambda v, f=field: _label(f, v))
    elif field.column == "requires_vet":
        st.checkbox(field.label, key=key)
    elif field.long:
        st.text_area(
            field.label, key=key, help="Placeholders: {client}, {patient}, {practice}, {due_date}, {vaccine}"
        )
    else:
        st.text_input(
            field.label, key=key, help="In euros, e.g. 12,50" if field.column == "price_cents" else None
        )


def _saved(message: str, resource: SharedResource) -> None:
    state.pop(f"shared.{resource.key}.loaded", None)
    state["shared.flash"] = message
    st.rerun()


def render(resource: SharedResource) -> None:
    prefix = f"shared.{resource.key}"
    with franchise_session() as session:
        items = history.item_list(session, resource.key, franchise_id)
    st.dataframe(items.drop("id"), hide_index=True, width="stretch", key=f"{prefix}.list")
    names = {
        row["id"]: f"{row['Code']} — {row.get('Name') or row.get('Subject')}" for row in items.to_dicts()
    }
    item_id = st.selectbox(f"Edit a {resource.singular}", [None, *names], key=f"{prefix}.item",
                           format_func=lambda i: f"New {resource.singular}…" if i is None else names[i])  # fmt: skip
    # The form's fields start from the chosen item (or a blank one) once per choice.
    if state.get(f"{prefix}.loaded") != (franchise_id, item_id):
        if item_id is None:
            values = {f.column: NEW_DEFAULTS.get(f.column, "") for f in resource.fields}
        else:
            with franchise_session() as session:
                values = edits.item_form(session, resource.key, franchise_id, item_id)
        for column, value in values.items():
            state[f"{prefix}.f.{column}"] = value
        state[f"{prefix}.loaded"] = (franchise_id, item_id)
    with st.form(f"{prefix}.form"):
        slots: dict[str, object] = {}
        for field in resource.fields:
            _widget(resource, field)
            slots[field.column] = st.empty()
        save = st.form_submit_button("Add" if item_id is None else "Save changes", type="primary")
    if save:
        values = {f.column: state[f"{prefix}.f.{f.column}"] for f in resource.fields}
        try:
            with franchise_session() as session:
                if item_id is None:
                    edits.create_item(session, actor, resource.key, franchise_id=franchise_id, values=values)
                    changed = True
                else:
                    changed = bool(edits.edit_item(session, actor, resource.key, franchise_id=franchise_id,
                                                   item_id=item_id, values=values))  # fmt: skip
        except SharedResourceInvalid as exc:
            ctx.field_errors(exc.errors, slots)
            st.error("Nothing was saved: correct the fields marked above.")
        except NotPermitted as exc:
            st.error(str(exc))
        else:
            what = f"{resource.singular.capitalize()} {values['code']}"
            _saved(f"{what} {'added' if item_id is None else 'saved' if changed else 'unchanged'}.", resource)
    if item_id is None:
        return
    offered = items.filter(id=item_id).row(0, named=True)["Offered"] == "yes"
    if st.button("Switch off for every practice" if offered else "Offer again", key=f"{prefix}.active"):
        with franchise_session() as session:
            edits.set_item_active(session, actor, resource.key, franchise_id=franchise_id, item_id=item_id,
                                  active=not offered)  # fmt: skip
        _saved(f"{names[item_id]} {'switched off' if offered else 'offered again'}.", resource)
    with franchise_session() as session:
        per_practice = history.effective_per_practice(session, resource.key, franchise_id, item_id)
        versions = history.item_history(session, resource.key, franchise_id, item_id)
    st.markdown("**Value per practice**")
    st.dataframe(per_practice, hide_index=True, width="stretch", key=f"{prefix}.per_practice")
    st.markdown("**Version history**")
    if versions.is_empty():
        st.caption("No change recorded yet.")
    else:
        st.dataframe(
            history.history_table(versions), hide_index=True, width="stretch", key=f"{prefix}.history"
        )


*resource_tabs, diagnosis_tab = st.tabs([*(r.label for r in RESOURCES.values()), "Diagnosis list"])
for tab, resource in zip(resource_tabs, RESOURCES.values(), strict=True):
    with tab:
        render(resource)
with diagnosis_tab:
    diagnosis_list.render(franchise_id, actor, franchise_session)
