"""Registering a client and editing their contact details: every field checked before anything is written, the
PII encrypted with the practice's data key (blind indexes for phone and e-mail), every write audited.

A write goes through the gateway like any other: in ``animana`` mode the session sends the new or changed client
to Animana as it commits (its refusal rolls everything back, ``UpstreamRefused`` names Animana's field, which is
the form's field of the same name), in ``hybrid`` the outbox entry is pushed later, in ``native`` nothing leaves.

The consents given at registration are recorded as ``client_consent`` rows (``warehouse.privacy.consent``, the
one record of them; the client card grants and withdraws them later). The audit of a contact edit keeps the old
values: postcode, city and channel as they were (they are stored in clear on the row too), the encrypted fields as their old ciphertext (base64) — the log is append-only
and kept for years, so it never holds a client's phone, e-mail or street in clear; whoever holds the practice's
key can still read what it was.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.clients.duplicates import DuplicateCandidate, likely_duplicates
from warehouse.clients.errors import ClientsError, InvalidClientDetails
from warehouse.kernel.audit import record
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import FieldCipher
from warehouse.kernel.validation import (
    InvalidEmail,
    InvalidPhone,
    InvalidPostcode,
    is_mobile,
    normalise_email,
    normalise_phone,
    normalise_postcode,
)
from warehouse.privacy.consent import Purpose, record_consent
from warehouse.schema.clients import CHANNELS, Client
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

# Column sizes of ``client`` (and Animana's: a longer value would be refused there in animana mode).
MAX_LENGTH = {"title": 20, "initials": 20, "first_name": 100, "last_name": 150, "street": 100, "city": 100}
# A Dutch house number: a number, then perhaps an addition (12A, 12-1, 12BIS), written as PostNL does (12 a -> 12A)
# so that the one stored address string splits back into street and number (Animana keeps them apart).
_HOUSE_NUMBER = re.compile(r"[1-9][0-9]{0,4}[A-Za-z0-9\-]{0,6}")
CHANNEL_LABELS = {"email": "E-mail", "sms": "SMS", "phone": "Phone", "post": "Post"}


@dataclass(frozen=True)
class Consents:
    """The consents asked at registration, one per ``Purpose`` (field name = purpose)."""

    reminders_email: bool = False
    reminders_sms: bool = False
    referral_sharing: bool = False
    analytics: bool = False


@dataclass(frozen=True)
class Contact:
    """A client's contact details as typed into a form (checked and normalised by the services)."""

    street: str = ""
    house_number: str = ""
    postcode: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    preferred_channel: str | None = None


@dataclass(frozen=True)
class NewClient:
    last_name: str
    contact: Contact = field(default_factory=Contact)
    title: str = ""
    initials: str = ""
    first_name: str = ""
    consents: Consents = field(default_factory=Consents)
    consent_how: str = "in_person"  # how the client gave them (``CONSENT_HOWS``): at the desk, on the phone …


@dataclass(frozen=True)
class CheckedContact:
    """Contact details that passed every rule, in their stored form (None: not given)."""

    address: str | None  # "street house number", the one string the address is stored (encrypted) as
    postcode: str | None
    city: str | None
    phone: str | None  # E.164
    email: str | None  # lower case
    preferred_channel: str | None
    mobile: bool  # the phone is a mobile number (SMS can reach it)


def _text(value: str) -> str | None:
    return " ".join(value.split()) or None


def _sentence(exc: ValueError) -> str:
    """A validator's message as a sentence for the form (``postcode is empty`` -> ``Postcode is empty.``)."""
    message = str(exc)
    return f"{message[:1].upper()}{message[1:]}."


def _check_contact(contact: Contact, errors: dict[str, str]) -> CheckedContact:
    """Every rule of the contact fields; each failure is added to ``errors`` under its form field."""
    street, city = _text(contact.street), _text(contact.city)
    number = re.sub(r"\s", "", contact.house_number).upper() or None
    postcode = None
    if contact.postcode.strip():
        try:
            postcode = normalise_postcode(contact.postcode)
        except InvalidPostcode as exc:
            errors["postcode"] = _sentence(exc)
    if number is not None and not _HOUSE_NUMBER.fullmatch(number):
        errors["house_number"] = "A house number starts with a number, like 12, 12A or 12-1."
    given = {"street": street, "house_number": number, "postcode": contact.postcode.strip(), "city": city}
    if any(given.values()):  # an address is all four or none: a letter cannot be sent to half of one
        labels = {"street": "street", "house_number": "house number", "postcode": "postcode", "city": "city"}
        for name, value in given.items():
            if not value:
                errors.setdefault(name, f"Fill in the {labels[name]} too, or leave the whole address empty.")
    for name, value in (("street", street), ("city", city)):
        if value and len(value) > MAX_LENGTH[name]:
            errors[name] = f"At most {MAX_LENGTH[name]} characters ({len(value)} typed)."
    phone = email = None
    if contact.phone.strip():
        try:
            phone = normalise_phone(contact.phone)
        except InvalidPhone as exc:
            errors["phone"] = _sentence(exc)
    if contact.email.strip():
        try:
            email = normalise_email(contact.email)
        except InvalidEmail as exc:
            errors["email"] = _sentence(exc)
    mobile = phone is not None and is_mobile(phone)
    channel = contact.preferred_channel or None
    needs = {"email": (email, "an e-mail address"), "sms": (mobile, "a mobile number"),
             "phone": (phone, "a phone number"), "post": (street, "an address")}  # fmt: skip
    if channel is not None and channel not in CHANNELS:
        errors["preferred_channel"] = f"Choose one of {', '.join(CHANNEL_LABELS.values())}."
    elif channel is not None and not needs[channel][0]:
        errors.setdefault("preferred_channel", f"{CHANNEL_LABELS[channel]} needs {needs[channel][1]} above.")
    address = f"{street} {number}" if street and number else None
    return CheckedContact(address, postcode, city, phone, email, channel, mobile)


def _check_consents(consents: Consents, contact: CheckedContact, errors: dict[str, str]) -> None:
    if consents.reminders_email and contact.email is None and "email" not in errors:
        errors["consent_reminders_email"] = "Reminders by e-mail need an e-mail address above."
    if consents.reminders_sms and not contact.mobile and "phone" not in errors:
        errors["consent_reminders_sms"] = "Reminders by SMS need a mobile number above."


def _check_names(new: NewClient, errors: dict[str, str]) -> dict[str, str | None]:
    names = {"title": _text(new.title), "initials": _text(new.initials), "first_name": _text(new.first_name),
             "last_name": _text(new.last_name)}  # fmt: skip
    if names["last_name"] is None:
        errors["last_name"] = "Fill in the last name."
    for name, value in names.items():
        if value and len(value) > MAX_LENGTH[name]:
            errors[name] = f"At most {MAX_LENGTH[name]} characters ({len(value)} typed)."
    return names


def check_new_client(new: NewClient) -> tuple[dict[str, str | None], CheckedContact]:
    """The names and contact details in their stored form, or ``InvalidClientDetails`` with every wrong field."""
    errors: dict[str, str] = {}
    names = _check_names(new, errors)
    contact = _check_contact(new.contact, errors)
    _check_consents(new.consents, contact, errors)
    if errors:
        raise InvalidClientDetails(errors)
    return names, contact


def duplicates_before_registering(
    session: Session, practice_id: int, new: NewClient, *, master_key: bytes
) -> list[DuplicateCandidate]:
    """Check the form, then the practice's clients that may be this person (for the user to choose)."""
    names, contact = check_new_client(new)
    return likely_duplicates(
        session, practice_id, last_name=names["last_name"] or "", postcode=contact.postcode, phone=contact.phone,
        email=contact.email, master_key=master_key,
    )  # fmt: skip


def register_client(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    new: NewClient,
    master_key: bytes,
    registered_despite: Sequence[int] = (),
    now: dt.datetime | None = None,
) -> int:
    """Create the client (nothing is written unless every field passes); the new client's id. Each consent as
    given is recorded (a row per purpose, also when refused: the client was asked). ``registered_despite``: the
    likely duplicates the user saw and chose not to open (kept in the audit)."""
    require(actor, CLIENTS_WRITE, practice_id)
    names, contact = check_new_client(new)
    cipher = practice_cipher(session, practice_id, master_key)
    client = Client(
        practice_id=practice_id, **names, postcode=contact.postcode, city=contact.city,
        email_enc=cipher.encrypt("email", contact.email), email_bidx=cipher.email_index(contact.email),
        phone_enc=cipher.encrypt("phone", contact.phone), phone_bidx=cipher.phone_index(contact.phone),
        address_enc=cipher.encrypt("address", contact.address), key_version=cipher.key_version,
        preferred_channel=contact.preferred_channel,
    )  # fmt: skip
    session.add(client)
    session.flush()
    for purpose in Purpose:
        record_consent(session, actor, practice_id, client.id, purpose, getattr(new.consents, purpose.value),
                       new.consent_how, now=now)  # fmt: skip
    record(session, practice_id=practice_id, action="register", entity="client", entity_ids=[client.id],
           detail={"preferred_channel": contact.preferred_channel,
                   "registered_despite": list(registered_despite)})  # fmt: skip
    return client.id


def _client(session: Session, practice_id: int, client_id: int) -> Client:
    client = session.scalar(
        select(Client).where(
            Client.practice_id == practice_id, Client.id == client_id, Client.deleted_at.is_(None)
        )
    )
    if client is None:
        raise ClientsError("client", f"Client {client_id} does not exist at this practice.")
    return client


def split_address(address: str | None) -> tuple[str, str]:
    """The stored address back into (street, house number): the last word when it starts with a digit."""
    if not address:
        return "", ""
    street, _, last = address.rpartition(" ")
    return (street, last) if street and last[:1].isdigit() else (address, "")


def current_contact(session: Session, practice_id: int, client_id: int, *, master_key: bytes) -> Contact:
    """The client's contact details as the edit form starts from them (decrypted)."""
    client = _client(session, practice_id, client_id)
    cipher = practice_cipher(session, practice_id, master_key, client.key_version)
    street, number = split_address(cipher.decrypt("address", client.address_enc))
    return Contact(
        street=street, house_number=number, postcode=client.postcode or "", city=client.city or "",
        phone=cipher.decrypt("phone", client.phone_enc) or "", email=cipher.decrypt("email", client.email_enc) or "",
        preferred_channel=client.preferred_channel,
    )  # fmt: skip


_ENCRYPTED = {"address": "address_enc", "phone": "phone_enc", "email": "email_enc"}


def _old_ciphertext(value: bytes | None) -> str | None:
    return base64.b64encode(bytes(value)).decode() if value is not None else None


def edit_contact(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    client_id: int,
    contact: Contact,
    master_key: bytes,
) -> list[str]:
    """Change the client's contact details; the names of the fields that changed (none: nothing written).
    New values are encrypted under the row's own key version (its other encrypted fields stay readable)."""
    require(actor, CLIENTS_WRITE, practice_id)
    errors: dict[str, str] = {}
    checked = _check_contact(contact, errors)
    if errors:
        raise InvalidClientDetails(errors)
    client = _client(session, practice_id, client_id)
    cipher: FieldCipher = practice_cipher(session, practice_id, master_key, client.key_version)
    changes: dict[str, dict[str, object]] = {}
    for name, column in _ENCRYPTED.items():
        new_value = getattr(checked, name)
        if cipher.decrypt(name, getattr(client, column)) != new_value:
            changes[name] = {"old_ciphertext": _old_ciphertext(getattr(client, column))}
            setattr(client, column, cipher.encrypt(name, new_value))
    if "phone" in changes:
        client.phone_bidx = cipher.phone_index(checked.phone)
    if "email" in changes:
        client.email_bidx = cipher.email_index(checked.email)
    in_clear = {
        "postcode": checked.postcode,
        "city": checked.city,
        "preferred_channel": checked.preferred_channel,
    }
    for column, new_value in in_clear.items():
        if getattr(client, column) != new_value:
            changes[column] = {"old": getattr(client, column), "new": new_value}
            setattr(client, column, new_value)
    if not changes:
        return []
    session.flush()
    record(session, practice_id=practice_id, action="edit_contact", entity="client", entity_ids=[client_id],
           detail={"changes": changes, "key_version": client.key_version})  # fmt: skip
    return list(changes)
