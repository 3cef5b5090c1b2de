"""The shared resources page's "Diagnosis list" tab: the franchise's coded diagnosis list (standard VeNom terms and
the franchise's own) searched, and a term of the franchise's own added (each refusal shown at its field)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import polars as pl
import streamlit as st
from sqlalchemy.orm import Session

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from warehouse.records import diagnoses
from warehouse.records.errors import RecordsError
from warehouse.schema.clients import SPECIES
from warehouse.security.permissions import Actor, NotPermitted
from warehouse.tenants.shared_edits import franchise_practices

state = st.session_state
KEY = "shared.diagnoses"
SHOWN = 50


def _species(value: str | None) -> str:
    return "any species" if value is None else value


def render(
    franchise_id: int, actor: Actor, open_session: Callable[[], AbstractContextManager[Session]]
) -> None:
    st.caption("The coded list vets choose diagnoses from at every practice of the franchise. A term missing from "
               "the standard list is added here with a code of the franchise's own (F-001, F-002, …).")  # fmt: skip
    if flash := state.pop(f"{KEY}.flash", None):
        st.success(flash)
    with open_session() as session:
        # The list is the franchise's: any of its practices reads it (and the addition is audited there).
        practice_id = franchise_practices(session, franchise_id)[0].id
    cols = st.columns([3, 1])
    query = cols[0].text_input("Search the list", key=f"{KEY}.query", placeholder="A word of the term, a code "
                               "or a VeNom id")  # fmt: skip
    species = cols[1].selectbox("Species", [None, *SPECIES], format_func=_species, key=f"{KEY}.species")
    with open_session() as session:
        found = diagnoses.diagnosis_codes(session, practice_id, query=query, species=species, limit=SHOWN + 1)
    if not found:
        st.caption("No term of the list matches.")
    else:
        st.dataframe(pl.DataFrame({
            "Code": [c.code for c in found[:SHOWN]],
            "VeNom id": [c.venom_id or "" for c in found[:SHOWN]],
            "Term": [c.term for c in found[:SHOWN]],
            "Species": [_species(c.species) for c in found[:SHOWN]],
        }), hide_index=True, width="stretch", key=f"{KEY}.list")  # fmt: skip
        if len(found) > SHOWN:
            st.caption(f"The first {SHOWN} terms are shown; search to find others.")
    st.markdown("**Add a term of the franchise's own**")
    with st.form(f"{KEY}.add"):
        slots: dict[str, object] = {}
        st.text_input("Term", key=f"{KEY}.term", max_chars=200)
        slots["term"] = st.empty()
        cols = st.columns(2)
        cols[0].text_input("VeNom id (if it has one)", key=f"{KEY}.venom_id")
        slots["venom_id"] = cols[0].empty()
        cols[1].selectbox("For", [None, *SPECIES], format_func=_species, key=f"{KEY}.for_species")
        slots["species"] = cols[1].empty()
        add = st.form_submit_button("Add term", type="primary")
    if not add:
        return
    try:
        with open_session() as session:
            entry = diagnoses.add_franchise_code(
                session, actor, practice_id=practice_id, term=state[f"{KEY}.term"],
                venom_id=state[f"{KEY}.venom_id"], species=state[f"{KEY}.for_species"],
            )  # fmt: skip
            added = f"{entry.term} added to the list as {entry.code}."
    except RecordsError as exc:
        ctx.field_errors({exc.field: str(exc)}, slots)
    except NotPermitted as exc:
        st.error(str(exc))
    else:
        empty_next_run({f"{KEY}.term": "", f"{KEY}.venom_id": "", f"{KEY}.for_species": None})
        state[f"{KEY}.flash"] = added
        st.rerun()
