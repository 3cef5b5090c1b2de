"""Register client: name, address, phone, e-mail, preferred channel and consents. Before saving, the practice's
likely duplicates are shown and the user chooses: open the existing client's card, or register anyway. Every
error is shown at its field; after saving, the new client's card opens."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from dashboard.components.pages import page
from dashboard.runtime import app_runtime
from warehouse.clients.errors import ClientsError, InvalidClientDetails
from warehouse.clients.registration import (
    CHANNEL_LABELS,
    Consents,
    Contact,
    NewClient,
    duplicates_before_registering,
    register_client,
)
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.privacy.consent import HOW_LABELS, PURPOSE_LABELS, SAID_HOWS
from warehouse.security.permissions import CLIENTS_WRITE

state = st.session_state
if not ctx.may(CLIENTS_WRITE):
    st.error(f"Your role at {ctx.here()} cannot register clients.")
    st.stop()
practice_id = ctx.one_practice("reg.practice")
ctx.breadcrumbs("Register client", ctx.practice_name(practice_id))
st.title("Register client")

TEXT_FIELDS = {"title": "Title", "initials": "Initials", "first_name": "First name", "last_name": "Last name *",
               "street": "Street", "house_number": "House number", "postcode": "Postcode", "city": "City",
               "phone": "Phone", "email": "E-mail"}  # fmt: skip
CONSENTS = {f"consent_{purpose}": label for purpose, label in PURPOSE_LABELS.items()}
slots: dict[str, object] = {}


def _text(column, name: str, **options) -> str:  # noqa: ANN001, ANN003
    value = column.text_input(TEXT_FIELDS[name], key=f"reg.{name}", **options)
    slots[name] = column.empty()
    return value


general = st.empty()
st.subheader("Name")
cols = st.columns([1, 1, 2, 3])
title = _text(cols[0], "title", placeholder="Dhr., Mevr.")
initials = _text(cols[1], "initials", placeholder="J.")
first_name = _text(cols[2], "first_name")
last_name = _text(cols[3], "last_name", placeholder="de Vries")
st.subheader("Address")
cols = st.columns([3, 1, 1, 2])
street = _text(cols[0], "street")
house_number = _text(cols[1], "house_number", placeholder="12A")
postcode = _text(cols[2], "postcode", placeholder="1234 AB")
city = _text(cols[3], "city")
st.subheader("Contact")
cols = st.columns([2, 3, 2])
phone = _text(cols[0], "phone", placeholder="06-1234 5678")
email = _text(cols[1], "email", placeholder="naam@voorbeeld.nl")
channel = cols[2].selectbox("Preferred channel", list(CHANNEL_LABELS), format_func=CHANNEL_LABELS.get, index=None,
                            placeholder="Not asked", key="reg.preferred_channel")  # fmt: skip
slots["preferred_channel"] = cols[2].empty()
st.subheader("Consent")
given: dict[str, bool] = {}
for name, label in CONSENTS.items():
    given[name] = st.checkbox(label, key=f"reg.{name}")
    slots[name] = st.empty()
how = st.selectbox("Consents given", SAID_HOWS, format_func=HOW_LABELS.get, key="reg.consent_how")
st.caption("The consents are recorded as given or refused, with your name, the time and how they were given.")

new = NewClient(
    last_name=last_name, title=title, initials=initials, first_name=first_name,
    contact=Contact(street=street, house_number=house_number, postcode=postcode, city=city, phone=phone,
                    email=email, preferred_channel=channel),
    consents=Consents(**{name.removeprefix("consent_"): value for name, value in given.items()}), consent_how=how,
)  # fmt: skip
errors: dict[str, str] = {}


def _save(despite: list[int]) -> None:
    """Register and open the new client's card; a refusal lands in ``errors`` (at its field)."""
    try:
        with ctx.tenant() as session:
            client_id = register_client(session, ctx.actor(), practice_id=practice_id, new=new,
                                        master_key=app_runtime().master_key(), registered_despite=despite)  # fmt: skip
    except InvalidClientDetails as exc:
        errors.update(exc.errors)
    except ClientsError as exc:
        errors[exc.field] = str(exc)
    except UpstreamRefused as exc:  # animana mode: Animana's relation fields carry the form's names
        errors[exc.field if exc.field in slots else ""] = str(exc)
    except UpstreamUnavailable as exc:
        errors[""] = f"{exc} Nothing was saved; try again in a moment."
    else:
        state.pop("reg.candidates", None)
        empty_next_run({f"reg.{n}": "" for n in TEXT_FIELDS} | {f"reg.{n}": False for n in CONSENTS}
                       | {"reg.preferred_channel": None})  # fmt: skip
        state["card.client"] = (practice_id, client_id)
        state["card.flash"] = f"{new.last_name.strip()} is registered."
        st.switch_page(page("client_card").path)


if st.button("Register", type="primary", key="reg.submit"):
    try:
        with ctx.tenant() as session:
            found = duplicates_before_registering(
                session, practice_id, new, master_key=app_runtime().master_key()
            )
    except InvalidClientDetails as exc:
        errors.update(exc.errors)
    else:
        if found:
            state["reg.candidates"] = (new, found)
        else:
            _save([])

candidates = state.get("reg.candidates")
if candidates is not None and candidates[0] != new:  # the form changed since: check again on the next submit
    state.pop("reg.candidates")
    candidates = None
if candidates is not None:
    with st.container(border=True):
        st.markdown(f"**This may be a client you already have** ({len(candidates[1])} found). Open the card, or "
                    "register a new client anyway.")  # fmt: skip
        for candidate in candidates[1]:
            where = " ".join(p for p in (candidate.postcode, candidate.city) if p)
            row = st.columns([4, 1])
            row[0].markdown(
                f"**{candidate.name}** · {where or 'no address'}  \n{', '.join(candidate.reasons)}"
            )
            if row[1].button("Open client card", key=f"reg.open.{candidate.client_id}"):
                state.pop("reg.candidates")
                state["card.client"] = (practice_id, candidate.client_id)
                st.switch_page(page("client_card").path)
        if st.button("Register anyway", key="reg.anyway"):
            _save([c.client_id for c in candidates[1]])

if "" in errors:
    general.error(errors.pop(""))
ctx.field_errors(errors, slots)
