"""Register patient: find the owner (and any co-owners), the patient's details with the breed list of its species
(a breed the list lacks can be added to the practice's own list), the chip checked as it is typed (and pointed
out when another practice of the franchise knows it), then a link to the new patient. The rules are
``warehouse.records.registration``'s; this page lays them out."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from dashboard.components.pages import page
from dashboard.runtime import app_runtime
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.records.breeds import add_breed, breed_choices, species_label
from warehouse.records.errors import RecordsError
from warehouse.records.registration import (
    MAX_AGE_YEARS,
    EstimatedAge,
    NewPatient,
    check_microchip,
    register_patient,
)
from warehouse.schema.clients import SPECIES
from warehouse.search.service import search
from warehouse.security.permissions import CLIENTS_READ, CLIENTS_WRITE, RECORDS_READ, NotPermitted

# Animana's animal fields → this form's fields (where its refusal is shown in animana mode).
ANIMANA_FIELDS = {"name": "name", "species": "species", "breed": "breed", "gender": "sex", "colour": "colour",
                  "chip_number": "microchip", "date_of_birth": "date_of_birth", "relation_ids": "owners"}  # fmt: skip
SEX_LABELS = {"female": "Female", "male": "Male", "unknown": "Unknown"}
EXACT, ESTIMATE = "Date of birth", "Estimated age"
EMPTY_FORM = {"reg.name": "", "reg.species": None, "reg.breed": None, "reg.new_breed": "", "reg.sex": None,
              "reg.neutered": False, "reg.birth_mode": EXACT, "reg.dob": None, "reg.age_years": 0,
              "reg.age_months": 0, "reg.colour": "", "reg.chip": "", "reg.owner_query": ""}  # fmt: skip

state = st.session_state
ctx.breadcrumbs("Register patient")
st.title("Register patient")
if not ctx.may(CLIENTS_WRITE):
    st.error(f"Your role at {ctx.here()} cannot register patients.")
    st.stop()
practice_id = ctx.one_practice("reg.practice")
today = ctx.now().astimezone(ctx.zone(practice_id)).date()
errors: dict[str, str] = {}

# --- the last registration, with the way to its record ----------------------------------------------------------
saved = state.get("reg.saved")
if saved is not None and saved["practice_id"] == practice_id:
    st.success(f"{saved['name']} is registered.")
    if saved.pop("announce", False):  # once, where the user is: the page stays scrolled down at the button
        st.toast(f"{saved['name']} is registered.", icon=":material/check_circle:")
    if saved["pointer"]:
        st.warning(saved["pointer"], icon=":material/info:")
    links = st.container(horizontal=True)
    if ctx.may(RECORDS_READ) and links.button("Open patient record", icon=":material/pets:", key="reg.open"):
        state["rec.practice"], state["rec.patient"] = practice_id, saved["patient_id"]
        st.switch_page(page("records").path)
    if ctx.may(CLIENTS_READ) and links.button("Open client card", icon=":material/person:", key="reg.card"):
        state["card.client"] = (practice_id, saved["owner_id"])
        st.switch_page(page("client_card").path)

# --- owners: the first is the primary owner (the one invoiced) -------------------------------------------------
st.subheader("Owner")
owners: list[tuple[int, str]] = state.setdefault(f"reg.owners.{practice_id}", [])
for index, (client_id, label) in enumerate(list(owners)):
    row = st.columns([4, 1, 1])
    row[0].write(f"**{label}**{' · primary owner' if index == 0 else ' · co-owner'}")
    if index > 0 and row[1].button("Make primary", key=f"reg.primary.{client_id}"):
        owners.insert(0, owners.pop(index))
        st.rerun()
    if row[2].button("Remove", key=f"reg.remove.{client_id}"):
        owners.pop(index)
        st.rerun()
query = st.text_input(
    "Find the owner" if not owners else "Add a co-owner", key="reg.owner_query",
    placeholder="Name, postcode or phone", icon=":material/search:",
)  # fmt: skip
owners_slot = st.empty()
if query.strip():
    with ctx.tenant() as session:
        found = search(session, query, master_key=app_runtime().master_key(), now=ctx.now()).group("client")
    hits = [h for h in found if h.practice_id == practice_id and h.id not in {o for o, _ in owners}]
    if not hits:
        st.info(f"No other client of {ctx.practice_name(practice_id)} found for “{query}”.")
    for hit in hits[:8]:
        if st.button(
            f"**{hit.title}** · {hit.detail}", key=f"reg.add.{hit.id}", icon=":material/person_add:"
        ):
            owners.append((hit.id, hit.title))
            empty_next_run({"reg.owner_query": ""})
            st.rerun()

# --- the patient ----------------------------------------------------------------------------------------------
st.subheader("Patient")
name = st.text_input("Name", key="reg.name", max_chars=100)
name_slot = st.empty()
species = st.selectbox("Species", SPECIES, index=None, key="reg.species", format_func=species_label,
                       placeholder="Choose the species")  # fmt: skip
species_slot = st.empty()
breeds: list[str] = []
if species is not None:
    with ctx.tenant() as session:
        breeds = breed_choices(session, practice_id, species)
breed = st.selectbox("Breed", breeds, index=None, key="reg.breed", disabled=species is None,
                     placeholder="Choose the breed (optional)" if species else "Choose the species first")  # fmt: skip
breed_slot = st.empty()
if species is not None:
    with st.expander(f"The breed is not on the {species_label(species)} list"):
        new_breed = st.text_input("Breed to add to the practice's list", key="reg.new_breed", max_chars=100)
        new_breed_slot = st.empty()
        if st.button("Add breed", key="reg.add_breed"):
            try:
                with ctx.tenant() as session:
                    added = add_breed(
                        session, ctx.actor(), practice_id=practice_id, species=species, name=new_breed
                    )
            except RecordsError as exc:
                new_breed_slot.error(str(exc))
            else:  # chosen at once; the next run draws the list with it
                empty_next_run({"reg.breed": added, "reg.new_breed": ""})
                st.rerun()
sex_cols = st.columns(2)
sex = sex_cols[0].radio("Sex", tuple(SEX_LABELS), index=None, key="reg.sex", format_func=SEX_LABELS.get,
                        horizontal=True)  # fmt: skip
neutered = sex_cols[1].checkbox("Neutered", key="reg.neutered")
sex_slot = st.empty()
birth_mode = st.radio("Age", (EXACT, ESTIMATE), key="reg.birth_mode", horizontal=True)
born: dt.date | EstimatedAge | None
if birth_mode == EXACT:
    born = st.date_input("Date of birth", value=None, format="DD-MM-YYYY", key="reg.dob",
                         min_value=dt.date(today.year - MAX_AGE_YEARS, 1, 1))  # fmt: skip
else:
    age_cols = st.columns(2)
    years = age_cols[0].number_input("Years (about)", min_value=0, max_value=MAX_AGE_YEARS, step=1,
                                      key="reg.age_years")  # fmt: skip
    months = age_cols[1].number_input("Months", min_value=0, max_value=11, step=1, key="reg.age_months")
    born = EstimatedAge(int(years), int(months))
birth_slot = st.empty()
colour = st.text_input("Colour", key="reg.colour", max_chars=100)
colour_slot = st.empty()
chip = st.text_input("Microchip", key="reg.chip", placeholder="15 digits (ISO 11784)")
chip_slot = st.empty()
if chip.strip():  # checked as typed: a wrong chip or one known elsewhere shows before saving
    try:
        with ctx.tenant() as session:
            checked = check_microchip(session, practice_id, chip)
    except RecordsError as exc:
        errors["microchip"] = str(exc)
    else:
        if checked is not None and checked.pointer:
            chip_slot.warning(checked.pointer, icon=":material/info:")

if st.button("Register patient", type="primary", key="reg.submit"):
    form = NewPatient(name=name, species=species or "", sex=sex or "", neutered=neutered, breed=breed, born=born,
                      colour=colour, microchip=chip, owner_ids=[o for o, _ in owners])  # fmt: skip
    try:
        with ctx.tenant() as session:
            registered = register_patient(
                session, ctx.actor(), practice_id=practice_id, patient=form, today=today
            )
    except RecordsError as exc:
        errors[exc.field] = str(exc)
    except UpstreamRefused as exc:  # animana mode: Animana's own refusal, at the field it names
        errors[ANIMANA_FIELDS.get(exc.field, "owners")] = str(exc)
    except (UpstreamUnavailable, NotPermitted) as exc:
        errors["register"] = f"{exc} Nothing was saved."
    else:
        state["reg.saved"] = {
            "practice_id": practice_id, "patient_id": registered.id, "name": registered.name,
            "owner_id": owners[0][0], "pointer": registered.chip.pointer if registered.chip else None,
            "announce": True,
        }  # fmt: skip
        owners.clear()
        empty_next_run(EMPTY_FORM)
        st.rerun()
ctx.field_errors(errors, {"owners": owners_slot, "name": name_slot, "species": species_slot, "breed": breed_slot,
                          "sex": sex_slot, "neutered": sex_slot, "date_of_birth": birth_slot, "age": birth_slot,
                          "colour": colour_slot, "microchip": chip_slot})  # fmt: skip
