"""Practice overrides: the practice manager sets the practice's own values for the franchise's shared resources
(a price, a duration or colour, a booster interval, a reminder's text) or switches an item off here, and goes back
to the franchise's values; with the item's version history at the franchise and at this practice."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import PRACTICE_OVERRIDES, NotPermitted
from warehouse.tenants import shared_edits as edits
from warehouse.tenants import shared_history as history
from warehouse.tenants.shared_fields import RESOURCES, SharedResource, SharedResourceInvalid

state = st.session_state
if not ctx.may(PRACTICE_OVERRIDES):
    st.error(f"Your role at {ctx.here()} cannot set the practice's own values.")
    st.stop()
actor = ctx.actor()
practice_id = ctx.one_practice("overrides.practice")
ctx.breadcrumbs("Practice overrides", ctx.practice_name(practice_id))
st.title("Practice overrides")
st.caption("The franchise defines these lists; a field left empty here uses the franchise's value.")
if flash := state.pop("overrides.flash", None):
    st.success(flash)
with ctx.tenant() as session:
    franchise_id = session.get(Tenant, practice_id).franchise_id


def _done(message: str, resource: SharedResource) -> None:
    state.pop(f"overrides.{resource.key}.loaded", None)
    state["overrides.flash"] = message
    st.rerun()


def render(resource: SharedResource) -> None:
    prefix = f"overrides.{resource.key}"
    with ctx.tenant() as session:
        items = history.practice_values(session, resource.key, practice_id)
    if items.is_empty():
        st.caption(f"The franchise offers no {resource.singular} now.")
        return
    st.dataframe(items.drop("id"), hide_index=True, width="stretch", key=f"{prefix}.list")
    names = {row["id"]: f"{row['Code']} — {row['Name']}" for row in items.to_dicts()}
    item_id = st.selectbox(f"Set own values for a {resource.singular}", list(names), key=f"{prefix}.item",
                           format_func=names.get)  # fmt: skip
    with ctx.tenant() as session:
        franchise = edits.item_form(session, resource.key, franchise_id, item_id)
        if state.get(f"{prefix}.loaded") != (practice_id, item_id):
            for column, value in edits.override_form(session, resource.key, practice_id, item_id).items():
                state[f"{prefix}.f.{column}"] = value
            state[f"{prefix}.loaded"] = (practice_id, item_id)
    with st.form(f"{prefix}.form"):
        slots: dict[str, object] = {}
        for field in resource.overridable:
            key = f"{prefix}.f.{field.column}"
            if field.column == "active":
                st.checkbox("Offered at this practice", key=key)
            else:
                widget = st.text_area if field.long else st.text_input
                widget(f"{field.label} (empty: the franchise's)", key=key,
                       placeholder=f"franchise: {franchise.get(field.column) or '–'}")  # fmt: skip
            slots[field.column] = st.empty()
        save = st.form_submit_button("Save own values", type="primary")
    if save:
        values = {f.column: state[f"{prefix}.f.{f.column}"] for f in resource.overridable}
        try:
            with ctx.tenant() as session:
                kept = edits.set_override(session, actor, resource.key, practice_id=practice_id, item_id=item_id,
                                          values=values)  # fmt: skip
        except SharedResourceInvalid as exc:
            ctx.field_errors(exc.errors, slots)
            st.error("Nothing was saved: correct the fields marked above.")
        except NotPermitted as exc:
            st.error(str(exc))
        else:
            _done(
                f"{names[item_id]}: {'own values saved' if kept else 'the franchise values apply'}.", resource
            )
    if st.button("Use the franchise's values", key=f"{prefix}.clear"):
        with ctx.tenant() as session:
            cleared = edits.clear_override(
                session, actor, resource.key, practice_id=practice_id, item_id=item_id
            )
        _done(f"{names[item_id]}: {'the franchise values apply again' if cleared else 'had no own values'}.",
              resource)  # fmt: skip
    with ctx.tenant() as session:
        versions = history.item_history(session, resource.key, franchise_id, item_id, practice_id=practice_id)
    st.markdown("**Version history** (the franchise's changes and this practice's)")
    if versions.is_empty():
        st.caption("No change recorded yet.")
    else:
        tz = ctx.zone(practice_id)
        st.dataframe(
            history.history_table(versions, tz), hide_index=True, width="stretch", key=f"{prefix}.history"
        )


for tab, resource in zip(st.tabs([r.label for r in RESOURCES.values()]), RESOURCES.values(), strict=True):
    with tab:
        render(resource)
