"""A permission is always "this permission at this practice".

For every pair of roles (R1 at practice A, R2 at practice B, in different franchises so a franchise role at A's
franchise does not reach B), every guarded service is called at A and at B by that user, as the app builds
them (memberships -> roles per practice -> Actor), under RLS with both practices visible. Each call must succeed
exactly when the role held at *that* practice grants what the service needs, and otherwise be refused naming
the practice. The guarded services are discovered from the source (every public function of ``warehouse/``
that calls ``require``, directly or through a helper of its module), so a new guarded service fails this test
until it is listed here with the permissions it needs.

One world per module; every call runs in a savepoint that is rolled back, so each starts from the same state.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.conftest import MASTER_KEY, Database
from tests.connectors.devices.devices_support import Clinic, ingest, vet_oru
from tests.factories import TZ, PracticeRows
from warehouse.billing import invoice_lines, issuing, payments
from warehouse.billing.drafts import create_draft, draft_from_visit
from warehouse.clients import registration as client_registration
from warehouse.clients.merge import RecordRef, merge_clients, merge_patients
from warehouse.clients.merge_undo import undo_merge
from warehouse.ingest.devices import inbox as device_inbox
from warehouse.integration import conflicts, dead_letters, modes
from warehouse.kernel.tenancy import AccessContext
from warehouse.messaging import on_request as messages_on_request
from warehouse.privacy import consent as privacy_consent
from warehouse.privacy import erasure
from warehouse.records import (
    breeds,
    consults,
    deceased,
    diagnoses,
    documents,
    lab_destinations,
    lab_orders,
    prescriptions,
    registration,
    vaccinations,
    weights,
)
from warehouse.referrals import queries as referral_queries
from warehouse.referrals import service as referral_service
from warehouse.scheduling import booking, transitions
from warehouse.schema.billing import ProductPriceOverride
from warehouse.schema.clinical import Visit
from warehouse.schema.scheduling import Appointment, AppointmentTypeOverride
from warehouse.schema.tenancy import ROLES, AppUser
from warehouse.security import audit_trail
from warehouse.security.accounts import FRANCHISE_ROLES, grant_role, roles_by_practice
from warehouse.security.permissions import (
    AUDIT_READ,
    BILLING_WRITE,
    CLIENTS_MERGE,
    CLIENTS_WRITE,
    CONSULT_WRITE,
    DEVICE_INBOX,
    INTEGRATION_MANAGE,
    PRACTICE_OVERRIDES,
    PRACTICE_SETTINGS,
    PRESCRIBE_VET_ONLY,
    PRIVACY_MANAGE,
    RECORDS_READ,
    RECORDS_WRITE,
    REFERRALS_WRITE,
    SCHEDULE_WRITE,
    SHARED_RESOURCES_MANAGE,
    Actor,
    NotPermitted,
    permissions_for,
)
from warehouse.tenants import practice_settings, shared_edits

WAREHOUSE = Path(__file__).resolve().parents[3] / "warehouse"
DAY = dt.datetime(2026, 11, 10, tzinfo=TZ)  # the factories' appointment day (the vet's shift 08:00-17:00)
TODAY = dt.datetime.now(TZ).date()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def guarded_services() -> set[str]:
    """``module.function`` of every public function under warehouse/ that checks a permission."""
    found: set[str] = set()
    for path in sorted(WAREHOUSE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {
            node.name: {
                c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
            }
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
        }
        guarded = {name for name, called in calls.items() if "require" in called}
        while more := {name for name, called in calls.items() if called & guarded} - guarded:
            guarded |= more
        module = ".".join(path.relative_to(WAREHOUSE.parent).with_suffix("").parts)
        found |= {f"{module}.{name}" for name in guarded if not name.startswith("_")}
    return found


@dataclass(frozen=True)
class Prep:
    """What the services of one practice act on (made once; every call is rolled back)."""

    rows: PracticeRows
    type_id: int
    protocol_id: int
    product_id: int
    checked_in_id: int
    in_consult_id: int
    free_visit_id: int
    draft_id: int
    draft_line_id: int
    issued_id: int
    document_id: int
    inbox_message_id: int
    referral_in: tuple[
        int, int
    ]  # (referring practice, referral): an active referral from a2 to this practice


Call = Callable[[Session, Actor, Prep], object]


def _refer(session: Session, actor: Actor, prep: Prep) -> int:
    return referral_service.refer_patient(
        session, actor, practice_id=prep.rows.practice_id, patient_id=prep.rows.patient_id,
        to_practice_id=prep.referral_in[0], reason="Echo", consent_how="phone",
    ).id  # fmt: skip


def _new_client(session: Session, prep: Prep) -> int:
    return session.execute(
        text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Vergeten') RETURNING id"),
        {"p": prep.rows.practice_id},
    ).scalar_one()


def _diagnosis_code(session: Session, prep: Prep) -> int:
    """A term of the franchise's coded list for any species."""
    return session.execute(
        text("SELECT id FROM diagnosis_code WHERE franchise_id = :f AND species IS NULL ORDER BY id LIMIT 1"),
        {"f": prep.rows.franchise_id},
    ).scalar_one()


def _diagnosis(session: Session, prep: Prep) -> int:
    """A provisional diagnosis on the practice's free visit, made by someone allowed to."""
    [made] = diagnoses.add_diagnoses(session, _setup_actor(prep.rows.practice_id), practice_id=prep.rows.practice_id,
                                     visit_id=prep.free_visit_id, code_ids=[_diagnosis_code(session, prep)])  # fmt: skip
    return made.id


def _lab(session: Session, prep: Prep) -> int:
    return session.execute(
        text("SELECT id FROM lab_destination WHERE practice_id = :p ORDER BY id LIMIT 1"),
        {"p": prep.rows.practice_id},
    ).scalar_one()


def _refused_order(session: Session, prep: Prep) -> int:
    """An order the lab refused, placed by someone allowed to."""
    order = lab_orders.place_order(session, _setup_actor(prep.rows.practice_id), practice_id=prep.rows.practice_id,
                                   patient_id=prep.rows.patient_id, destination_id=_lab(session, prep),
                                   test_code="CBC")  # fmt: skip
    session.execute(
        text("UPDATE lab_order SET delivery_state = 'refused' WHERE practice_id = :p AND id = :id"),
        {"p": prep.rows.practice_id, "id": order.id},
    )
    return order.id


def _duplicate(session: Session, prep: Prep, kind: str) -> RecordRef:
    """A new client or dog at the practice, to merge into the factories' one."""
    statement = {
        "client": "INSERT INTO client (practice_id, last_name) VALUES (:p, 'Dubbel') RETURNING id",
        "patient": "INSERT INTO patient (practice_id, name, species) VALUES (:p, 'Dubbel', 'dog') RETURNING id",
    }[kind]
    return RecordRef(
        prep.rows.practice_id, session.execute(text(statement), {"p": prep.rows.practice_id}).scalar_one()
    )


# service -> (the permissions it needs at the practice it writes, a valid call of it there)
SERVICES: dict[str, tuple[frozenset[str], Call]] = {
    "warehouse.scheduling.booking.book": (frozenset({SCHEDULE_WRITE}), lambda s, a, p: booking.book(
        s, a, practice_id=p.rows.practice_id, appointment_type_id=p.type_id, resource_id=p.rows.resource_id,
        starts_at=DAY.replace(hour=14), patient_id=p.rows.patient_id)),
    "warehouse.scheduling.booking.reschedule": (frozenset({SCHEDULE_WRITE}), lambda s, a, p: booking.reschedule(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.rows.appointment_id, starts_at=DAY.replace(hour=10))),
    "warehouse.scheduling.transitions.cancel": (frozenset({SCHEDULE_WRITE}), lambda s, a, p: transitions.cancel(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.rows.appointment_id, reason="Ziek")),
    "warehouse.scheduling.transitions.mark_no_show": (frozenset({SCHEDULE_WRITE}), lambda s, a, p: transitions.mark_no_show(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.rows.appointment_id)),
    "warehouse.scheduling.transitions.check_in": (frozenset({SCHEDULE_WRITE}), lambda s, a, p: transitions.check_in(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.rows.appointment_id)),
    "warehouse.scheduling.transitions.start_consult": (frozenset({CONSULT_WRITE}), lambda s, a, p: transitions.start_consult(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.checked_in_id)),
    "warehouse.scheduling.transitions.finish_consult": (frozenset({CONSULT_WRITE}), lambda s, a, p: transitions.finish_consult(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.in_consult_id)),
    "warehouse.records.consults.write_consult": (frozenset({CONSULT_WRITE, RECORDS_WRITE}), lambda s, a, p: consults.write_consult(
        s, a, practice_id=p.rows.practice_id, appointment_id=p.checked_in_id,
        note=consults.ConsultNote(subjective="Eet slecht"))),
    "warehouse.records.vaccinations.record_vaccination": (frozenset({RECORDS_WRITE}), lambda s, a, p: vaccinations.record_vaccination(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, protocol_id=p.protocol_id,
        given_on=TODAY, today=TODAY)),
    # A free-typed VRIJ medicine needs the clinical record; a UDD one a veterinarian as well (see below).
    "warehouse.records.prescriptions.prescribe": (frozenset({RECORDS_WRITE}), lambda s, a, p: prescriptions.prescribe(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, quantity="1",
        product_name="Testmiddel zonder registratie", dispensing_category="VRIJ")),
    "warehouse.records.documents.upload_document": (frozenset({RECORDS_WRITE}), lambda s, a, p: documents.upload_document(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, filename="scan.png", content=PNG,
        master_key=MASTER_KEY)),
    "warehouse.records.documents.read_document": (frozenset({RECORDS_READ}), lambda s, a, p: documents.read_document(
        s, a, practice_id=p.rows.practice_id, document_id=p.document_id, master_key=MASTER_KEY)),
    "warehouse.billing.drafts.create_draft": (frozenset({BILLING_WRITE}), lambda s, a, p: create_draft(
        s, a, practice_id=p.rows.practice_id, client_id=p.rows.client_id)),
    "warehouse.billing.drafts.draft_from_visit": (frozenset({BILLING_WRITE}), lambda s, a, p: draft_from_visit(
        s, a, practice_id=p.rows.practice_id, visit_id=p.free_visit_id)),
    "warehouse.billing.invoice_lines.add_line": (frozenset({BILLING_WRITE}), lambda s, a, p: invoice_lines.add_line(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.draft_id, product_id=p.product_id, quantity="1")),
    "warehouse.billing.invoice_lines.remove_line": (frozenset({BILLING_WRITE}), lambda s, a, p: invoice_lines.remove_line(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.draft_id, line_id=p.draft_line_id,
        reason="Niet gegeven")),
    "warehouse.billing.invoice_lines.price_line": (frozenset({BILLING_WRITE}), lambda s, a, p: invoice_lines.price_line(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.draft_id, line_id=p.draft_line_id, price="12,50")),
    "warehouse.billing.issuing.issue": (frozenset({BILLING_WRITE}), lambda s, a, p: issuing.issue(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.draft_id, issued_on=TODAY)),
    "warehouse.billing.payments.record_payment": (frozenset({BILLING_WRITE}), lambda s, a, p: payments.record_payment(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.issued_id, method="pin", amount_cents=100)),
    "warehouse.billing.issuing.credit": (frozenset({BILLING_WRITE}), lambda s, a, p: issuing.credit(
        s, a, practice_id=p.rows.practice_id, invoice_id=p.issued_id, issued_on=TODAY)),
    "warehouse.ingest.devices.inbox.resolve_inbox": (frozenset({DEVICE_INBOX}), lambda s, a, p: device_inbox.resolve_inbox(
        s, p.inbox_message_id, p.rows.patient_id, a, master_key=MASTER_KEY)),
    "warehouse.tenants.practice_settings.save_practice_details": (frozenset({PRACTICE_SETTINGS}), lambda s, a, p: (
        practice_settings.save_practice_details(s, a, practice_id=p.rows.practice_id, values={
            "address": "Oudegracht 12", "postcode": "3511 AR", "city": "Utrecht", "vat_number": "NL812345678B02",
            "kvk_number": "87654321", "iban": "NL91ABNA0417164300"}))),
    "warehouse.tenants.practice_settings.set_up_invoice_series": (frozenset({PRACTICE_SETTINGS}), lambda s, a, p: (
        practice_settings.set_up_invoice_series(s, a, practice_id=p.rows.practice_id, prefix="VC", per_year=True,
                                                width=5, today=TODAY, confirmed=True))),
    "warehouse.integration.modes.set_mode": (frozenset({INTEGRATION_MANAGE}), lambda s, a, p: modes.set_mode(
        s, a, practice_id=p.rows.practice_id, module="agenda", mode="hybrid", confirmed=True)),
    # The factories' world has an open conflict over each practice's client surname.
    "warehouse.integration.conflicts.resolve": (frozenset({INTEGRATION_MANAGE}), lambda s, a, p: conflicts.resolve(
        s, a, s.execute(text("SELECT id FROM writeback_conflict WHERE practice_id = :p AND state = 'open'"),
                        {"p": p.rows.practice_id}).scalar_one(), {"last_name": "animana"})),
    "warehouse.integration.dead_letters.retry": (frozenset({INTEGRATION_MANAGE}), lambda s, a, p: dead_letters.retry(
        s, a, p.rows.practice_id)),
    # The franchise's list: at every practice of the franchise in the session (here the one of the pair).
    "warehouse.tenants.shared_edits.create_item": (frozenset({SHARED_RESOURCES_MANAGE}), lambda s, a, p: shared_edits.create_item(
        s, a, "prices", franchise_id=p.rows.franchise_id, values={"code": "NIEUW", "name": "Nieuw", "kind": "goods",
                                                                   "price_cents": "1,00", "vat_rate_bp": 2100})),
    "warehouse.tenants.shared_edits.edit_item": (frozenset({SHARED_RESOURCES_MANAGE}), lambda s, a, p: shared_edits.edit_item(
        s, a, "prices", franchise_id=p.rows.franchise_id, item_id=p.product_id, values={
            "code": "C-CONS", "name": "Consult", "kind": "service", "price_cents": "46,00", "vat_rate_bp": 2100})),
    "warehouse.tenants.shared_edits.set_item_active": (frozenset({SHARED_RESOURCES_MANAGE}), lambda s, a, p: (
        shared_edits.set_item_active(s, a, "prices", franchise_id=p.rows.franchise_id, item_id=p.product_id,
                                     active=False))),
    "warehouse.tenants.shared_edits.set_override": (frozenset({PRACTICE_OVERRIDES}), lambda s, a, p: shared_edits.set_override(
        s, a, "prices", practice_id=p.rows.practice_id, item_id=p.product_id, values={"price_cents": "48,00"})),
    "warehouse.tenants.shared_edits.clear_override": (frozenset({PRACTICE_OVERRIDES}), lambda s, a, p: shared_edits.clear_override(
        s, a, "prices", practice_id=p.rows.practice_id, item_id=p.product_id)),
    # Merges (issue 16): the practice's client or dog with a new duplicate; an undo of a manager's merge.
    "warehouse.clients.merge.merge_clients": (frozenset({CLIENTS_MERGE}), lambda s, a, p: merge_clients(
        s, a, RecordRef(p.rows.practice_id, p.rows.client_id), _duplicate(s, p, "client"))),
    "warehouse.clients.merge.merge_patients": (frozenset({CLIENTS_MERGE}), lambda s, a, p: merge_patients(
        s, a, RecordRef(p.rows.practice_id, p.rows.patient_id), _duplicate(s, p, "patient"))),
    "warehouse.clients.merge_undo.undo_merge": (frozenset({CLIENTS_MERGE}), lambda s, a, p: undo_merge(
        s, a, practice_id=p.rows.practice_id, merge_id=merge_clients(
            s, Actor.at(None, p.rows.practice_id, {"practice_manager"}),
            RecordRef(p.rows.practice_id, p.rows.client_id), _duplicate(s, p, "client")).merge_id)),
    "warehouse.records.registration.register_patient": (frozenset({CLIENTS_WRITE}), lambda s, a, p: registration.register_patient(
        s, a, practice_id=p.rows.practice_id, today=TODAY, patient=registration.NewPatient(
            name="Pip", species="rabbit", sex="unknown", neutered=False, owner_ids=[p.rows.client_id]))),
    "warehouse.records.breeds.add_breed": (frozenset({CLIENTS_WRITE}), lambda s, a, p: breeds.add_breed(
        s, a, practice_id=p.rows.practice_id, species="rabbit", name="Teddy dwerg")),
    # The world's appointments of the patient lie in the past: only the patient (and its reminder) change.
    "warehouse.records.deceased.mark_deceased": (frozenset({CLIENTS_WRITE}), lambda s, a, p: deceased.mark_deceased(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, deceased_on=TODAY, today=TODAY,
        now=dt.datetime.now(dt.UTC), confirmed=deceased.preview_deceased(
            s, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, now=dt.datetime.now(dt.UTC)))),
    "warehouse.clients.registration.register_client": (frozenset({CLIENTS_WRITE}), lambda s, a, p: client_registration.register_client(
        s, a, practice_id=p.rows.practice_id, new=client_registration.NewClient(last_name="Nieuw"), master_key=MASTER_KEY)),
    "warehouse.clients.registration.edit_contact": (frozenset({CLIENTS_WRITE}), lambda s, a, p: client_registration.edit_contact(
        s, a, practice_id=p.rows.practice_id, client_id=p.rows.client_id,
        contact=client_registration.Contact(phone="06 12345678"), master_key=MASTER_KEY)),
    # Clinical entry (issue 16): coded diagnoses, weights, lab orders out.
    "warehouse.records.weights.record_weight": (frozenset({RECORDS_WRITE}), lambda s, a, p: weights.record_weight(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, weight="12,5",
        measured_on=TODAY - dt.timedelta(days=1), measured_time=dt.time(9, 0))),
    "warehouse.records.diagnoses.add_franchise_code": (frozenset({SHARED_RESOURCES_MANAGE}), lambda s, a, p: diagnoses.add_franchise_code(
        s, a, practice_id=p.rows.practice_id, term="Testdiagnose")),
    "warehouse.records.diagnoses.add_diagnoses": (frozenset({RECORDS_WRITE}), lambda s, a, p: diagnoses.add_diagnoses(
        s, a, practice_id=p.rows.practice_id, visit_id=p.free_visit_id, code_ids=[_diagnosis_code(s, p)])),
    "warehouse.records.diagnoses.set_status": (frozenset({RECORDS_WRITE}), lambda s, a, p: diagnoses.set_status(
        s, a, practice_id=p.rows.practice_id, diagnosis_id=_diagnosis(s, p), status="confirmed")),
    "warehouse.records.diagnoses.remove_diagnosis": (frozenset({RECORDS_WRITE}), lambda s, a, p: diagnoses.remove_diagnosis(
        s, a, practice_id=p.rows.practice_id, diagnosis_id=_diagnosis(s, p), reason="Verkeerd ingevoerd")),
    "warehouse.records.lab_orders.place_order": (frozenset({RECORDS_WRITE}), lambda s, a, p: lab_orders.place_order(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, destination_id=_lab(s, p),
        test_code="CBC")),
    "warehouse.records.lab_orders.retry_order": (frozenset({RECORDS_WRITE}), lambda s, a, p: lab_orders.retry_order(
        s, a, practice_id=p.rows.practice_id, order_id=_refused_order(s, p))),
    # Lab destinations, set up on the practice settings page (issue 16).
    "warehouse.records.lab_destinations.add_destination": (frozenset({PRACTICE_SETTINGS}), lambda s, a, p: lab_destinations.add_destination(
        s, a, practice_id=p.rows.practice_id, name="Ander lab", host="lab.example.nl", port=2575, message_type="ORM^O01")),
    "warehouse.records.lab_destinations.switch_off_destination": (frozenset({PRACTICE_SETTINGS}), lambda s, a, p: lab_destinations.switch_off_destination(
        s, a, practice_id=p.rows.practice_id, destination_id=_lab(s, p))),
    # The audit trail (issue 17).
    "warehouse.security.audit_trail.audit_page": (frozenset({AUDIT_READ}), lambda s, a, p: audit_trail.audit_page(
        s, a, p.rows.practice_id, audit_trail.AuditFilter(action="read"))),
    "warehouse.security.audit_trail.entities": (frozenset({AUDIT_READ}), lambda s, a, p: audit_trail.entities(
        s, a, p.rows.practice_id)),
    "warehouse.security.audit_trail.staff": (frozenset({AUDIT_READ}), lambda s, a, p: audit_trail.staff(
        s, a, p.rows.practice_id)),
    "warehouse.security.audit_trail.chain_status": (frozenset({AUDIT_READ}), lambda s, a, p: audit_trail.chain_status(
        s, a, p.rows.practice_id)),
    # Consent per purpose (issue 17): the front desk records what the client says.
    "warehouse.privacy.consent.record_consent": (frozenset({CLIENTS_WRITE}), lambda s, a, p: privacy_consent.record_consent(
        s, a, p.rows.practice_id, p.rows.client_id, "analytics", True, "phone")),
    # Erasure (issue 17), of a client who owes nothing (the world's client has an issued invoice open).
    "warehouse.privacy.erasure.erase_client": (frozenset({PRIVACY_MANAGE}), lambda s, a, p: erasure.erase_client(
        s, a, p.rows.practice_id, _new_client(s, p), master_key=MASTER_KEY)),
    # Referrals (issue 17): the referring practice's writes, then the receiving practice's (a2 referred to it).
    "warehouse.referrals.service.refer_patient": (frozenset({REFERRALS_WRITE, CLIENTS_WRITE}), _refer),
    "warehouse.referrals.service.revoke_referral": (frozenset({REFERRALS_WRITE, CLIENTS_WRITE}), lambda s, a, p: referral_service.revoke_referral(
        s, a, practice_id=p.rows.practice_id, referral_id=_refer(s, a, p), reason="Owner chose another clinic")),
    "warehouse.referrals.service.withdraw_consent": (frozenset({REFERRALS_WRITE, CLIENTS_WRITE}), lambda s, a, p: referral_service.withdraw_consent(
        s, a, practice_id=p.rows.practice_id, referral_id=_refer(s, a, p))),
    "warehouse.referrals.service.accept_referral": (frozenset({REFERRALS_WRITE}), lambda s, a, p: referral_service.accept_referral(
        s, a, practice_id=p.referral_in[0], referral_id=p.referral_in[1])),
    "warehouse.referrals.service.complete_referral": (frozenset({REFERRALS_WRITE}), lambda s, a, p: referral_service.complete_referral(
        s, a, practice_id=p.referral_in[0], referral_id=p.referral_in[1])),
    "warehouse.referrals.service.send_findings": (frozenset({REFERRALS_WRITE}), lambda s, a, p: referral_service.send_findings(
        s, a, practice_id=p.referral_in[0], referral_id=p.referral_in[1], findings="Mild murmur")),
    "warehouse.referrals.queries.referred_history": (frozenset({RECORDS_READ}), lambda s, a, p: referral_queries.referred_history(
        s, a, practice_id=p.referral_in[0], referral_id=p.referral_in[1], master_key=MASTER_KEY)),
    "warehouse.messaging.on_request.queue_due_now": (frozenset({CLIENTS_WRITE}), lambda s, a, p: messages_on_request.queue_due_now(
        s, a, p.rows.practice_id, now=DAY)),
}  # fmt: skip
# Further calls of a listed service that need more: prescribing a UDD medicine.
EXTRA_CALLS: dict[str, tuple[frozenset[str], Call]] = {
    "warehouse.records.prescriptions.prescribe (UDD)": (frozenset({RECORDS_WRITE, PRESCRIBE_VET_ONLY}), lambda s, a, p: prescriptions.prescribe(
        s, a, practice_id=p.rows.practice_id, patient_id=p.rows.patient_id, quantity="1",
        product_name="Testmiddel zonder registratie", dispensing_category="UDD")),
}  # fmt: skip
# Each pair once: A and B are prepared alike (`_prep`), so (R2 at A, R1 at B) is (R1 at A, R2 at B) with the
# practices' names swapped. The pair of a role with itself is kept.
PAIRS = list(itertools.combinations_with_replacement(ROLES, 2))
# Guarded services that run their own transactions (against Animana) and cannot be called in a rolled-back session:
# where their refusal per role is tested instead.
OWN_TRANSACTIONS = {
    "warehouse.integration.cutover.cut_over": "tests/connectors/animana/cutover/test_cutover.py",
    **{f"warehouse.security.user_admin.{name}": "tests/warehouse/security/test_user_admin.py" for name in (
        "list_users", "add_user", "invite_again", "grant_role", "revoke_role", "set_active", "unlock", "reset_mfa",
        "end_sessions")},
}  # fmt: skip


@dataclass(frozen=True)
class World:
    db: Database
    a: Prep
    b: Prep
    users: dict[tuple[str, str], int]  # (role at A, role at B) -> user id


def _setup_actor(practice_id: int) -> Actor:
    return Actor.at(None, practice_id, {"veterinarian", "practice_manager"})


def _prep(db: Database, rows: PracticeRows, code: str) -> Prep:
    pid = rows.practice_id
    with db.system() as session:
        type_id = session.scalar(
            select(AppointmentTypeOverride.appointment_type_id).where(
                AppointmentTypeOverride.practice_id == pid
            )
        )
        product_id = session.scalar(
            select(ProductPriceOverride.product_id).where(ProductPriceOverride.practice_id == pid)
        )
        appointments = {}
        for status, hour in (("checked_in", 11), ("in_consult", 12)):
            row = Appointment(practice_id=pid, resource_id=rows.resource_id, patient_id=rows.patient_id,
                              client_id=rows.client_id, franchise_id=rows.franchise_id, appointment_type_id=type_id,
                              starts_at=DAY.replace(hour=hour), ends_at=DAY.replace(hour=hour, minute=20),
                              status=status)  # fmt: skip
            session.add(row)
            session.flush()
            appointments[status] = row.id
        visit = Visit(practice_id=pid, patient_id=rows.patient_id, vet_user_id=rows.user_id,
                      started_at=DAY.replace(hour=15), reason="Controle")  # fmt: skip
        session.add(visit)
        session.flush()
        free_visit_id = visit.id
    actor = _setup_actor(pid)
    with db.as_app(AccessContext.for_practices([pid])) as session:
        protocol_id = vaccinations.vaccine_protocols(session, pid, "dog")[0].id
        draft = create_draft(session, actor, practice_id=pid, client_id=rows.client_id)
        line = invoice_lines.add_line(
            session, actor, practice_id=pid, invoice_id=draft.id, product_id=product_id, quantity="1"
        )
        issued = create_draft(session, actor, practice_id=pid, client_id=rows.client_id)
        invoice_lines.add_line(
            session, actor, practice_id=pid, invoice_id=issued.id, product_id=product_id, quantity="2"
        )
        issuing.issue(session, actor, practice_id=pid, invoice_id=issued.id, issued_on=TODAY)
        document = documents.upload_document(session, actor, practice_id=pid, patient_id=rows.patient_id,
                                             filename="foto.png", content=PNG, master_key=MASTER_KEY)  # fmt: skip
        ids = (protocol_id, draft.id, line.id, issued.id, document.id)
    unmatched = ingest(
        db, Clinic(pid), vet_oru(f"PERM-{code}", chip="528140000777777", owner="Onbekend^Piet")
    )
    assert unmatched.status == "inbox"
    protocol_id, draft_id, line_id, issued_id, document_id = ids
    return Prep(rows, type_id, protocol_id, product_id, appointments["checked_in"], appointments["in_consult"],
                free_visit_id, draft_id, line_id, issued_id, document_id, unmatched.message_id,
                _referral_to(db, pid))  # fmt: skip


def _referral_to(db: Database, practice_id: int) -> tuple[int, int]:
    """An active referral of a2's patient to the practice, its owner consenting (made as the system)."""
    a2 = db.world.practices["a2"]
    with db.system() as session:
        session.execute(
            text("INSERT INTO client_consent (practice_id, client_id, purpose, granted, how) "
                 "VALUES (:p, :c, 'referral_sharing', true, 'in_person')"),
            {"p": a2.practice_id, "c": a2.client_id},
        )  # fmt: skip
        referral_id = session.execute(
            text("INSERT INTO referral (practice_id, patient_id, to_practice_id, reason, referring_vet_id, "
                 "referring_vet_name, status, valid_from, valid_until, consent_recorded_at, consent_recorded_by, "
                 "consent_how) VALUES (:p, :pat, :to, 'Cardiology', :u, 'Vet a2', 'open', now() - interval '1 day', "
                 "now() + interval '30 days', now(), :u, 'phone') RETURNING id"),
            {"p": a2.practice_id, "pat": a2.patient_id, "to": practice_id, "u": a2.user_id},
        ).scalar_one()  # fmt: skip
    return a2.practice_id, referral_id


def _tenant_for(rows: PracticeRows, role: str) -> int:
    """Where a membership of ``role`` "at" this practice is granted: its franchise for a franchise role."""
    return rows.franchise_id if role in FRANCHISE_ROLES else rows.practice_id


@pytest.fixture(scope="module")
def world(world_db: Database) -> World:
    a, b = world_db.world.practices["a1"], world_db.world.practices["b1"]
    assert a.franchise_id != b.franchise_id
    users = {}
    with world_db.system() as session:
        for r1, r2 in PAIRS:
            user = AppUser(username=f"pair-{r1}-{r2}", full_name=f"{r1} / {r2}", password_hash="x")
            session.add(user)
            session.flush()
            grant_role(session, user_id=user.id, tenant_id=_tenant_for(a, r1), role=r1)
            grant_role(session, user_id=user.id, tenant_id=_tenant_for(b, r2), role=r2)
            users[(r1, r2)] = user.id
    return World(world_db, _prep(world_db, a, "a1"), _prep(world_db, b, "b1"), users)


def test_every_guarded_service_is_listed_with_the_permissions_it_needs():
    assert guarded_services() == set(SERVICES) | set(OWN_TRANSACTIONS), (
        "a guarded service was added or removed: list it in SERVICES with what it needs and a valid call"
    )
    root = WAREHOUSE.parent
    for service, tested_in in OWN_TRANSACTIONS.items():
        assert "NotPermitted" in (root / tested_in).read_text(), f"{service}: its refusal is not tested"


def test_the_world_gives_each_practice_only_the_role_held_there(world):
    with world.db.system() as session:
        roles = roles_by_practice(session, world.users[("veterinarian", "receptionist")])
    assert roles[world.a.rows.practice_id] == {"veterinarian"}
    assert roles[world.b.rows.practice_id] == {"receptionist"}


@pytest.mark.parametrize(("role_a", "role_b"), PAIRS, ids=[f"{r1}-at-A-{r2}-at-B" for r1, r2 in PAIRS])
def test_a_service_succeeds_at_a_practice_exactly_when_the_role_there_grants_it(world, role_a, role_b):
    user_id = world.users[(role_a, role_b)]
    with world.db.system() as session:
        actor = Actor(user_id, roles_by_practice(session, user_id), {world.a.rows.practice_id: "Praktijk a1",
                                                                      world.b.rows.practice_id: "Praktijk b1"})  # fmt: skip
    context = AccessContext.for_practices(
        [world.a.rows.practice_id, world.b.rows.practice_id], user_id=user_id
    )
    wrong: list[str] = []
    with world.db.as_app(context) as session:
        for (name, (needs, call)), (prep, role, label) in itertools.product(
            [*SERVICES.items(), *EXTRA_CALLS.items()], [(world.a, role_a, "A"), (world.b, role_b, "B")]
        ):
            expected = needs <= permissions_for({role})
            savepoint = session.begin_nested()
            try:
                call(session, actor, prep)
                outcome = "done"
            except NotPermitted as exc:
                outcome = "refused"
                if f"Praktijk {label.lower()}1" not in str(exc):
                    wrong.append(f"{name} at {label} ({role}): the refusal does not name the practice: {exc}")
            finally:
                savepoint.rollback()
            if outcome != ("done" if expected else "refused"):
                wrong.append(
                    f"{name} at {label} as {role}: {outcome}, expected {'done' if expected else 'refused'}"
                )
        session.rollback()
    assert not wrong, "\n".join(wrong)
