"""The right of access: everything the practice holds about a client, as one tree of dataclasses, and as JSON.

:func:`export_client` gathers, inside the caller's tenant session (row-level security decides what exists):
the contact details (decrypted), the consents (current and every grant and withdrawal), the client's animals
with their visits (and diagnoses), vaccinations, prescriptions and lab results, the invoices with their lines,
the payments, the reminders sent or due (``reminder``: the messages of today), and who read the client's or
their animals' records when (``audit_log`` entries with action ``read``). The export itself is audited (action
``export``). The permission (PRIVACY_MANAGE) is the caller's to check: the page and the CLI do.

:func:`to_json` writes the tree with the dataclasses' field names as keys, in their declared order (the keys
documented here are the file's documentation), dates and times as ISO 8601 (times in UTC), amounts in integer
cents, quantities as the decimal text they were stored as, lab values as decimal text without padding zeros. The readable PDF is
``warehouse.privacy.export_pdf.to_pdf``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.clients.card import client_name
from warehouse.kernel.audit import record
from warehouse.kernel.ciphers import practice_cipher
from warehouse.privacy.consent import ConsentState, consent_history, current_consents
from warehouse.schema.clients import Client
from warehouse.schema.tenancy import Tenant

FORMAT_VERSION = 1  # ``format_version`` in the JSON: raised when a key changes meaning or goes away


@dataclass(frozen=True)
class Contact:
    name: str
    title: str | None
    initials: str | None
    first_name: str | None
    last_name: str
    address: str | None
    postcode: str | None
    city: str | None
    phone: str | None
    email: str | None
    iban: str | None
    preferred_channel: str | None
    active: bool
    registered_at: dt.datetime
    animana_id: str | None


@dataclass(frozen=True)
class Consent:
    purpose: str
    granted: bool
    recorded_at: dt.datetime | None
    recorded_by: str | None
    how: str | None
    note: str | None

    @classmethod
    def of(cls, state: ConsentState) -> Consent:
        return cls(
            state.purpose.value, state.granted, state.recorded_at, state.recorded_by, state.how, state.note
        )


@dataclass(frozen=True)
class Diagnosis:
    term: str
    code: str | None
    status: str
    diagnosed_at: dt.datetime


@dataclass(frozen=True)
class Visit:
    started_at: dt.datetime
    vet: str | None
    reason: str | None
    subjective: str | None
    objective: str | None
    assessment: str | None
    plan: str | None
    diagnoses: list[Diagnosis]


@dataclass(frozen=True)
class Vaccination:
    vaccine_name: str
    given_on: dt.date
    due_on: dt.date | None
    batch_number: str | None


@dataclass(frozen=True)
class Prescription:
    product_name: str
    quantity: Decimal
    dosage_instructions: str | None
    prescribed_at: dt.datetime
    prescribed_by: str | None


@dataclass(frozen=True)
class LabResult:
    observed_at: dt.datetime
    test: str | None
    code: str
    name: str | None
    value: str | None  # the number as stored, or the text result
    unit: str | None
    reference: str | None  # "low–high" or the lab's own text
    abnormal_flag: str | None


@dataclass(frozen=True)
class Animal:
    name: str
    species: str
    breed: str | None
    sex: str
    date_of_birth: dt.date | None
    microchip: str | None
    deceased: bool
    deceased_on: dt.date | None
    primary_owner: bool
    visits: list[Visit]
    vaccinations: list[Vaccination]
    prescriptions: list[Prescription]
    lab_results: list[LabResult]


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: Decimal
    unit_price_cents: int
    vat_rate_bp: int
    line_incl_cents: int


@dataclass(frozen=True)
class Invoice:
    number: str
    issued_on: dt.date
    due_on: dt.date | None
    status: str
    total_incl_cents: int
    vat_cents: int
    lines: list[InvoiceLine]


@dataclass(frozen=True)
class Payment:
    paid_at: dt.datetime
    amount_cents: int
    method: str
    invoice_number: str | None


@dataclass(frozen=True)
class Message:
    """A reminder the practice sent or will send (``reminder``)."""

    kind: str
    animal: str | None
    due_on: dt.date
    status: str
    channel: str | None
    sent_at: dt.datetime | None
    description: str | None


@dataclass(frozen=True)
class Read:
    """Someone opened the client's card or an animal's record."""

    occurred_at: dt.datetime
    user: str | None
    what: str  # client or patient
    animal: str | None
    view: str | None  # where it was read (the page or service)
    session: str | None  # the sign-in session, when the entry recorded it


@dataclass(frozen=True)
class ClientExport:
    format_version: int
    generated_at: dt.datetime
    practice: str
    client_id: int
    contact: Contact
    consents: list[Consent]  # the current consent per purpose
    consent_history: list[Consent]  # every grant and withdrawal, newest first
    animals: list[Animal]
    invoices: list[Invoice]
    payments: list[Payment]
    messages: list[Message]
    reads: list[Read]


def _rows(session: Session, sql: str, **params: object) -> list[dict]:
    return [dict(r._mapping) for r in session.execute(text(sql), params)]


def _user_names(session: Session) -> dict[int, str]:
    return dict(session.execute(text("SELECT id, full_name FROM app_user")).tuples().all())


def _number(value: Decimal | None) -> str:
    """A lab value without the column's padding (``5.400000`` -> ``5.4``), never in exponent form."""
    return "" if value is None else format(value.normalize(), "f")


def _reference(row: dict) -> str | None:
    if row["ref_low"] is not None or row["ref_high"] is not None:
        return f"{_number(row['ref_low'])}–{_number(row['ref_high'])}"
    return row["ref_text"]


def _animals(session: Session, practice_id: int, client_id: int, users: dict[int, str]) -> list[Animal]:
    patients = _rows(session, """
        SELECT p.id, p.name, p.species, p.breed, p.sex, p.date_of_birth, p.microchip, p.deceased, p.deceased_on,
               cp.is_primary FROM client_patient cp
          JOIN patient p ON p.practice_id = cp.practice_id AND p.id = cp.patient_id
         WHERE cp.practice_id = :p AND cp.client_id = :c AND p.deleted_at IS NULL ORDER BY p.name, p.id""",
        p=practice_id, c=client_id)  # fmt: skip
    ids = [p["id"] for p in patients]
    by_patient = {"visits": {}, "diagnoses": {}, "vaccinations": {}, "prescriptions": {}, "lab": {}}
    queries = {
        "visits": "SELECT * FROM visit WHERE practice_id = :p AND patient_id = ANY(:ids) ORDER BY started_at, id",
        "diagnoses": "SELECT d.*, c.code FROM diagnosis d LEFT JOIN diagnosis_code c ON c.id = d.diagnosis_code_id "
                     "AND c.franchise_id = d.franchise_id WHERE d.practice_id = :p AND d.patient_id = ANY(:ids) "
                     "AND d.removed_at IS NULL ORDER BY d.diagnosed_at, d.id",
        "vaccinations": "SELECT * FROM vaccination WHERE practice_id = :p AND patient_id = ANY(:ids) "
                        "ORDER BY given_on, id",
        "prescriptions": "SELECT * FROM prescription WHERE practice_id = :p AND patient_id = ANY(:ids) "
                         "ORDER BY prescribed_at, id",
        "lab": "SELECT o.*, coalesce(l.test_name, l.test_code) AS test FROM lab_observation o "
               "LEFT JOIN lab_order l ON l.practice_id = o.practice_id AND l.id = o.lab_order_id "
               "WHERE o.practice_id = :p AND o.patient_id = ANY(:ids) AND o.superseded_by IS NULL "
               "ORDER BY o.observed_at, o.id",
    }  # fmt: skip
    for name, sql in queries.items():
        for row in _rows(session, sql, p=practice_id, ids=ids):
            key = row["visit_id"] if name == "diagnoses" else row["patient_id"]
            by_patient[name].setdefault(key, []).append(row)
    animals = []
    for p in patients:
        visits = [
            Visit(v["started_at"], users.get(v["vet_user_id"]), v["reason"], v["subjective"], v["objective"],
                  v["assessment"], v["plan"],
                  [Diagnosis(d["term"], d["code"] or d["venom_code"], d["status"], d["diagnosed_at"])
                   for d in by_patient["diagnoses"].get(v["id"], [])])
            for v in by_patient["visits"].get(p["id"], [])
        ]  # fmt: skip
        vaccinations = [Vaccination(v["vaccine_name"], v["given_on"], v["due_on"], v["batch_number"])
                        for v in by_patient["vaccinations"].get(p["id"], [])]  # fmt: skip
        prescriptions = [Prescription(r["product_name"], r["quantity"], r["dosage_instructions"], r["prescribed_at"],
                                      users.get(r["prescribed_by"]))
                         for r in by_patient["prescriptions"].get(p["id"], [])]  # fmt: skip
        lab = [
            LabResult(o["observed_at"], o["test"], o["code"], o["text"],
                      _number(o["value_numeric"]) if o["value_numeric"] is not None else o["value_text"], o["unit"],
                      _reference(o), o["abnormal_flag"])
            for o in by_patient["lab"].get(p["id"], [])
        ]  # fmt: skip
        animals.append(Animal(p["name"], p["species"], p["breed"], p["sex"], p["date_of_birth"], p["microchip"],
                              p["deceased"], p["deceased_on"], p["is_primary"], visits, vaccinations, prescriptions,
                              lab))  # fmt: skip
    return animals


def _invoices(session: Session, practice_id: int, client_id: int) -> list[Invoice]:
    invoices = _rows(session, "SELECT * FROM invoice WHERE practice_id = :p AND client_id = :c "
                              "ORDER BY issued_on, id", p=practice_id, c=client_id)  # fmt: skip
    lines: dict[int, list[InvoiceLine]] = {}
    for row in _rows(session, "SELECT * FROM invoice_line WHERE practice_id = :p AND invoice_id = ANY(:ids) "
                              "ORDER BY invoice_id, id", p=practice_id, ids=[i["id"] for i in invoices]):  # fmt: skip
        lines.setdefault(row["invoice_id"], []).append(
            InvoiceLine(
                row["description"],
                row["quantity"],
                row["unit_price_cents"],
                row["vat_rate_bp"],
                row["line_incl_cents"],
            )  # fmt: skip
        )
    return [Invoice(i["number"], i["issued_on"], i["due_on"], i["status"], i["total_incl_cents"], i["vat_cents"],
                    lines.get(i["id"], [])) for i in invoices]  # fmt: skip


def _payments(session: Session, practice_id: int, client_id: int) -> list[Payment]:
    rows = _rows(session, """
        SELECT pay.paid_at, pay.amount_cents, pay.method, i.number FROM payment pay
          LEFT JOIN invoice i ON i.practice_id = pay.practice_id AND i.id = pay.invoice_id
         WHERE pay.practice_id = :p AND pay.client_id = :c ORDER BY pay.paid_at, pay.id""",
        p=practice_id, c=client_id)  # fmt: skip
    return [Payment(r["paid_at"], r["amount_cents"], r["method"], r["number"]) for r in rows]


def _messages(session: Session, practice_id: int, client_id: int, animals: dict[int, str]) -> list[Message]:
    rows = _rows(session, """
        SELECT * FROM reminder WHERE practice_id = :p
           AND (client_id = :c OR (client_id IS NULL AND patient_id = ANY(:ids))) ORDER BY due_on, id""",
        p=practice_id, c=client_id, ids=list(animals))  # fmt: skip
    return [Message(r["kind"], animals.get(r["patient_id"]), r["due_on"], r["status"], r["channel"], r["sent_at"],
                    r["description"]) for r in rows]  # fmt: skip


def _reads(session: Session, practice_id: int, client_id: int, animals: dict[int, str],
           users: dict[int, str]) -> list[Read]:  # fmt: skip
    rows = _rows(session, """
        SELECT occurred_at, actor_user_id, entity, entity_ids, detail, session_id FROM audit_log
         WHERE practice_id = :p AND action = 'read'
           AND ((entity = 'client' AND entity_ids && ARRAY[:c]::bigint[])
                OR (entity = 'patient' AND entity_ids && CAST(:ids AS bigint[])))
         ORDER BY occurred_at, seq""",
        p=practice_id, c=client_id, ids=list(animals))  # fmt: skip
    reads = []
    for r in rows:
        animal = (
            next((animals[i] for i in r["entity_ids"] if i in animals), None)
            if r["entity"] == "patient"
            else None
        )
        detail = r["detail"] or {}
        reads.append(Read(r["occurred_at"], users.get(r["actor_user_id"]), r["entity"], animal, detail.get("view"),
                          r["session_id"]))  # fmt: skip
    return reads


def export_client(session: Session, practice_id: int, client_id: int, master_key: bytes) -> ClientExport:
    """Everything about the client (see the module's docstring); ``LookupError`` when the client is not here.
    Audited as an ``export`` of the client."""
    client = session.scalar(
        select(Client).where(
            Client.practice_id == practice_id, Client.id == client_id, Client.deleted_at.is_(None)
        )
    )
    if client is None:
        raise LookupError(f"Client {client_id} does not exist at this practice.")
    cipher = practice_cipher(session, practice_id, master_key, client.key_version)
    contact = Contact(
        client_name(client), client.title, client.initials, client.first_name, client.last_name,
        cipher.decrypt("address", client.address_enc), client.postcode, client.city,
        cipher.decrypt("phone", client.phone_enc), cipher.decrypt("email", client.email_enc),
        cipher.decrypt("iban", client.iban_enc), client.preferred_channel, client.active, client.created_at,
        client.animana_id,
    )  # fmt: skip
    users = _user_names(session)
    animal_rows = _rows(session, "SELECT p.id, p.name FROM client_patient cp JOIN patient p ON p.practice_id = "
                                 "cp.practice_id AND p.id = cp.patient_id WHERE cp.practice_id = :p AND "
                                 "cp.client_id = :c", p=practice_id, c=client_id)  # fmt: skip
    animal_names = {r["id"]: r["name"] for r in animal_rows}
    practice = session.scalar(select(Tenant.name).where(Tenant.id == practice_id)) or ""
    export = ClientExport(
        format_version=FORMAT_VERSION, generated_at=dt.datetime.now(dt.UTC), practice=practice, client_id=client_id,
        contact=contact,
        consents=[Consent.of(s) for s in current_consents(session, practice_id, client_id).values()],
        consent_history=[Consent.of(s) for s in consent_history(session, practice_id, client_id)],
        animals=_animals(session, practice_id, client_id, users),
        invoices=_invoices(session, practice_id, client_id),
        payments=_payments(session, practice_id, client_id),
        messages=_messages(session, practice_id, client_id, animal_names),
        reads=_reads(session, practice_id, client_id, animal_names, users),
    )  # fmt: skip
    record(session, practice_id=practice_id, action="export", entity="client", entity_ids=[client_id],
           detail={"animals": len(export.animals), "format_version": FORMAT_VERSION})  # fmt: skip
    return export


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the export")


def _tree(value: object) -> object:
    """Dataclasses as dicts in field order; ``dataclasses.asdict`` deep-copies every value on the way, which made
    it the slower half of writing a ten-year export."""
    if dataclasses.is_dataclass(value):
        return {f.name: _tree(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_tree(v) for v in value]
    return value


def to_json(export: ClientExport) -> bytes:
    """The export as UTF-8 JSON, keys in the dataclasses' order (stable), ISO dates, UTC times."""
    return json.dumps(_tree(export), default=_plain, ensure_ascii=False, indent=2).encode()
