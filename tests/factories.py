"""Builds a small world with a row in every tenant table, for isolation and service tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.billing.vat import line_amounts
from warehouse.kernel.crypto import FieldCipher, unwrap_data_key
from warehouse.schema.billing import (
    Invoice,
    InvoiceLine,
    InvoiceLineRemoval,
    InvoiceSeries,
    Payment,
    Product,
    ProductPriceOverride,
)
from warehouse.schema.clients import Client, ClientPatient, Patient, WeightMeasurement
from warehouse.schema.clinical import (
    Diagnosis,
    Document,
    LabObservation,
    LabOrder,
    Prescription,
    Reminder,
    ReminderTemplate,
    ReminderTemplateOverride,
    Vaccination,
    VaccineProtocol,
    VaccineProtocolOverride,
    Visit,
)
from warehouse.schema.ingestion import DeviceMessage, DocumentContent, ImagingStudy, IngestQuarantine, SyncRun
from warehouse.schema.operations import Event, SyncState
from warehouse.schema.scheduling import (
    Appointment,
    AppointmentType,
    AppointmentTypeOverride,
    Resource,
    StaffShift,
)
from warehouse.schema.tenancy import TenantDataKey
from warehouse.security.accounts import add_user
from warehouse.tenants.admin import add_franchise, add_practice

TZ = ZoneInfo("Europe/Amsterdam")
PASSWORD = "Correct-Horse-Battery-9"


@dataclass
class PracticeRows:
    practice_id: int
    franchise_id: int
    resource_id: int
    room_id: int
    client_id: int
    patient_id: int
    appointment_id: int
    user_id: int


@dataclass
class World:
    franchises: dict[str, int] = field(default_factory=dict)
    practices: dict[str, PracticeRows] = field(default_factory=dict)
    franchise_manager_id: int = 0


def cipher_for(session: Session, practice_id: int, master_key: bytes) -> FieldCipher:
    wrapped = session.get(TenantDataKey, (practice_id, 1)).wrapped_key
    return FieldCipher(practice_id, unwrap_data_key(master_key, practice_id, wrapped))


def _franchise_resources(session: Session, franchise_id: int) -> dict[str, int]:
    appointment_type = AppointmentType(
        franchise_id=franchise_id, code="consult", name="Consult", duration_minutes=15
    )
    product = Product(franchise_id=franchise_id, code="C-CONS", name="Consult", kind="service", price_cents=4500,
                      vat_rate_bp=2100)  # fmt: skip
    protocol = VaccineProtocol(franchise_id=franchise_id, code="dog-chp", name="CHP", species="dog",
                               booster_interval_days=1095)  # fmt: skip
    template = ReminderTemplate(franchise_id=franchise_id, code="vacc", channel="email", subject="Vaccinatie",
                                body="Beste {client}")  # fmt: skip
    session.add_all([appointment_type, product, protocol, template])
    session.flush()
    # The item a CHP vaccination is billed as (linked to its protocol).
    session.add(Product(franchise_id=franchise_id, code="V-CHP", name="Vaccinatie hond (CHP)", kind="service",
                        price_cents=5200, vat_rate_bp=2100, vaccine_protocol_id=protocol.id))  # fmt: skip
    session.flush()
    return {
        "type": appointment_type.id,
        "product": product.id,
        "protocol": protocol.id,
        "template": template.id,
    }


def populate_practice(
    session: Session, practice_id: int, franchise_id: int, shared: dict[str, int], master_key: bytes, tag: str
) -> PracticeRows:
    """One row in every practice-owned table (the audit tables fill themselves through triggers)."""
    cipher = cipher_for(session, practice_id, master_key)
    user = add_user(session, username=f"vet-{tag}", full_name=f"Vet {tag}", password=PASSWORD,
                    memberships=[(practice_id, "veterinarian")])  # fmt: skip
    vet = Resource(practice_id=practice_id, kind="staff", name=f"Dierenarts {tag}", user_id=user.id)
    room = Resource(practice_id=practice_id, kind="room", name="Spreekkamer 1")
    email = f"jansen.{tag}@example.nl"
    client = Client(practice_id=practice_id, last_name=f"Jansen-{tag}", initials="J.", postcode="1012AB",
                    city="Amsterdam", email_enc=cipher.encrypt("email", email), email_bidx=cipher.email_index(email),
                    phone_enc=cipher.encrypt("phone", "06-12345678"), phone_bidx=cipher.phone_index("06-12345678"),
                    address_enc=cipher.encrypt("address", "Damrak 1"))  # fmt: skip
    patient = Patient(practice_id=practice_id, name=f"Bello-{tag}", species="dog", breed="Labrador",
                      sex="male_neutered", microchip="528140000123456", date_of_birth=dt.date(2019, 4, 1))  # fmt: skip
    session.add_all([vet, room, client, patient])
    session.flush()
    # A fixed day in the past: never "today" for the workspace tests, whose work week books 09:00 today.
    day = dt.datetime(2026, 11, 10, 9, 0, tzinfo=TZ)
    session.add_all([
        ClientPatient(practice_id=practice_id, client_id=client.id, patient_id=patient.id),
        WeightMeasurement(practice_id=practice_id, patient_id=patient.id, measured_at=day, weight_grams=31500),
        StaffShift(practice_id=practice_id, resource_id=vet.id, starts_at=day.replace(hour=8),
                   ends_at=day.replace(hour=17)),
        AppointmentTypeOverride(practice_id=practice_id, appointment_type_id=shared["type"], franchise_id=franchise_id,
                                duration_minutes=20),
        VaccineProtocolOverride(practice_id=practice_id, protocol_id=shared["protocol"], franchise_id=franchise_id,
                                booster_interval_days=365),
        ReminderTemplateOverride(practice_id=practice_id, template_id=shared["template"], franchise_id=franchise_id,
                                 subject="Vaccinatie!"),
        ProductPriceOverride(practice_id=practice_id, product_id=shared["product"], franchise_id=franchise_id,
                             price_cents=4700),
        SyncState(practice_id=practice_id, source="animana", resource="relations", cursor="2026-01-01T00:00:00Z"),
    ])  # fmt: skip
    appointment = Appointment(practice_id=practice_id, resource_id=vet.id, patient_id=patient.id, client_id=client.id,
                              franchise_id=franchise_id, appointment_type_id=shared["type"], starts_at=day,
                              ends_at=day + dt.timedelta(minutes=20), status="booked")  # fmt: skip
    session.add(appointment)
    session.flush()
    visit = Visit(practice_id=practice_id, patient_id=patient.id, appointment_id=appointment.id, vet_user_id=user.id,
                  started_at=day, reason="Jaarlijkse controle", subjective="Eet goed", objective="T 38.5",
                  assessment="Gezond", plan="Vaccinatie")  # fmt: skip
    session.add(visit)
    session.flush()
    order = LabOrder(
        practice_id=practice_id, patient_id=patient.id, visit_id=visit.id, accession_number=f"ACC-{tag}"
    )
    session.add(order)
    amounts = line_amounts(Decimal(1), 4700, 2100)
    invoice = Invoice(practice_id=practice_id, number=f"2026-{tag}-0001", client_id=client.id, visit_id=visit.id,
                      issued_on=day.date(), status="issued", total_excl_cents=amounts.excl_cents,
                      vat_cents=amounts.vat_cents, total_incl_cents=amounts.incl_cents)  # fmt: skip
    session.add(invoice)
    session.flush()
    session.add_all([
        Diagnosis(practice_id=practice_id, visit_id=visit.id, patient_id=patient.id, term="Gezond"),
        Vaccination(practice_id=practice_id, patient_id=patient.id, visit_id=visit.id, vaccine_name="Nobivac DHP",
                    given_on=day.date(), due_on=day.date() + dt.timedelta(days=1095)),
        Prescription(practice_id=practice_id, patient_id=patient.id, visit_id=visit.id, product_name="Meloxicam",
                     quantity=Decimal("1"), dispensing_category="UDA"),
        LabObservation(practice_id=practice_id, patient_id=patient.id, lab_order_id=order.id, code="GLU",
                       value_numeric=Decimal("5.4"), unit="mmol/L", ref_low=Decimal("3.5"), ref_high=Decimal("7"),
                       status="final", observed_at=day),
        Document(practice_id=practice_id, patient_id=patient.id, title="Röntgen", filename="x.png",
                 content_type="image/png", size_bytes=10, sha256="0" * 64, storage_key=f"{practice_id}/x"),
        Reminder(practice_id=practice_id, patient_id=patient.id, client_id=client.id, kind="vaccination",
                 due_on=day.date() + dt.timedelta(days=1080)),
        InvoiceLine(practice_id=practice_id, invoice_id=invoice.id, description="Consult", quantity=Decimal(1),
                    unit_price_cents=4700, vat_rate_bp=2100, line_excl_cents=amounts.excl_cents,
                    line_vat_cents=amounts.vat_cents, line_incl_cents=amounts.incl_cents),
        Payment(practice_id=practice_id, invoice_id=invoice.id, client_id=client.id, method="pin",
                amount_cents=amounts.incl_cents),
        InvoiceLineRemoval(practice_id=practice_id, invoice_id=invoice.id, description="Nagels knippen",
                           quantity=Decimal(1), unit_price_cents=1000, reason="Gratis bij controle"),
        InvoiceSeries(practice_id=practice_id, prefix=f"2026-{tag}-", per_year=False, width=4, last_number=1,
                      origin="detected"),
        Event(practice_id=practice_id, activity="check_in", patient_id=patient.id, appointment_id=appointment.id),
        DeviceMessage(practice_id=practice_id, source="cli", raw=b"MSH|^~\\&|", sha256="0" * 64, size_bytes=9,
                      status="inbox", inbox_reason="hl7_invalid"),
        SyncRun(practice_id=practice_id, source="animana", mode="full"),
        IngestQuarantine(practice_id=practice_id, source="animana", resource="animals", raw="{}", reason="bad"),
    ])  # fmt: skip
    session.flush()
    document_id = session.scalar(select(Document.id).where(Document.practice_id == practice_id))
    session.add_all([
        DocumentContent(practice_id=practice_id, document_id=document_id,
                        ciphertext=cipher.encrypt("document", "png bytes") or b""),
        ImagingStudy(practice_id=practice_id, patient_id=patient.id, document_id=document_id, modality="CR"),
    ])  # fmt: skip
    session.flush()
    # --- marts (issue 5): one row per practice in every mart table --------------------------------------------
    from warehouse.schema import marts

    session.add_all([
        marts.MartPracticeDay(practice_id=practice_id, day=day.date(), visits=1, revenue_excl_cents=4700),
        marts.MartStaffDay(practice_id=practice_id, day=day.date(), resource_id=vet.id, appts_booked=1),
        marts.MartAppointmentTypeDay(practice_id=practice_id, day=day.date(), appointment_type_id=shared["type"]),
        marts.MartHourDay(practice_id=practice_id, day=day.date(), hour=9, appts_booked=1),
        marts.MartDiagnosisDay(practice_id=practice_id, day=day.date(), venom_code="", term="Gezond", diagnoses=1),
        marts.MartPracticeMonth(practice_id=practice_id, month=day.date().replace(day=1), active_clients=1),
        marts.MartOpenInvoice(practice_id=practice_id, invoice_id=invoice.id, client_id=client.id,
                              issued_on=day.date(), total_incl_cents=0, paid_cents=0, outstanding_cents=0),
        marts.MartDirtyDay(practice_id=practice_id, day=dt.date(2000, 1, 1)),  # triggers mark the real days
        marts.MartRefresh(practice_id=practice_id),
    ])  # fmt: skip
    session.flush()
    # --- end marts -------------------------------------------------------------------------------------------
    # --- models (issue 6): a model artefact of the franchise and a suggestion shown, per practice --------------
    from warehouse.schema.models import ModelArtifact, SuggestionLog

    session.add_all([
        ModelArtifact(franchise_id=franchise_id, kind="next_action", version=practice_id, status="candidate",
                      manifest={}, code_version="test", sha256="0" * 64, blob=b"model"),
        SuggestionLog(practice_id=practice_id, user_id=user.id, patient_id=patient.id, activity="invoice",
                      action="create_invoice", rank=1, score=0.5),
    ])  # fmt: skip
    session.flush()
    # --- end models ------------------------------------------------------------------------------------------
    # --- two-way Animana (issue 15): an outbox entry, a held
    # Animana change and a conflict per practice ---------------------------------------------------------------
    from warehouse.schema.integration import (
        WritebackConflict,
        WritebackHanded,
        WritebackIncoming,
        WritebackOutbox,
    )

    # The practices are not linked to Animana, so their writes were not captured; one entry by hand, handed over.
    outbox_entry = WritebackOutbox(practice_id=practice_id, module="clients", table_name="client", row_id=client.id,
                                   operation="update", changes={"last_name": "Lokaal"})  # fmt: skip
    session.add(outbox_entry)
    session.flush()
    session.add_all([
        WritebackHanded(practice_id=practice_id, entry_id=outbox_entry.id),
        WritebackIncoming(practice_id=practice_id, table_name="client", row_id=client.id,
                          incoming={"last_name": "Animana"}, animana_version="2026-01-01T00:00:00Z"),
        WritebackConflict(practice_id=practice_id, module="clients", table_name="client", row_id=client.id,
                          fields={"last_name": {"local": "Lokaal", "animana": "Animana", "base": "Oud",
                                                "rule": None, "decided": None}}),
    ])  # fmt: skip
    session.flush()
    # --- merges (issue 16): a merge record per practice (for the isolation tests; nothing was moved) ----------
    from warehouse.schema.clients import RecordMerge

    session.add(RecordMerge(practice_id=practice_id, kind="client", survivor_id=client.id, duplicate_id=client.id + 1,
                            merged_on=day.date(), moved=[], removed=[], duplicate_before={}))  # fmt: skip
    session.flush()
    # --- end merges ------------------------------------------------------------------------------------------
    # --- patient registration (issue 16): a breed the practice added to its own list ---------------------------
    from warehouse.schema.clients import PracticeBreed

    session.add(
        PracticeBreed(practice_id=practice_id, species="dog", name=f"Kruising {tag}", added_by=user.id)
    )
    session.flush()
    # --- lab orders out (issue 16): a lab destination per practice, and the world's order sent to it ---------
    from warehouse.schema.clinical import LabDestination

    destination = LabDestination(practice_id=practice_id, name="Lab", host="127.0.0.1", port=2576,
                                 message_type="OML^O21", tests=[{"code": "CBC", "name": "Haematology"}])  # fmt: skip
    session.add(destination)
    session.flush()
    order.destination_id, order.delivery_state = destination.id, "acknowledged"
    session.flush()
    # --- consent (issue 17): the client granted reminders by e-mail at the desk -------------------------------
    from warehouse.schema.clients import ClientConsent

    session.add(ClientConsent(practice_id=practice_id, client_id=client.id, purpose="reminders_email", granted=True,
                              recorded_by=user.id, how="in_person"))  # fmt: skip
    session.flush()
    # --- erasure (issue 17): an erased client with its erasure, and an audit entry an erasure redacted ---------
    from warehouse.schema.erasure import AuditRedaction, ClientErasure

    erased = Client(practice_id=practice_id, last_name=f"Erased client {tag.upper()}", active=False)
    session.add(erased)
    session.flush()
    session.add(ClientErasure(practice_id=practice_id, client_id=erased.id, pseudonym=tag.upper(), reason="Test",
                              retention_until=dt.date(2099, 1, 1)))  # fmt: skip
    # Its hash is the entry's own (nothing was rewritten), so the world's chain still verifies.
    first_hash = session.execute(text("SELECT hash FROM audit_log WHERE practice_id = :p AND seq = 1"),
                                 {"p": practice_id}).scalar_one()  # fmt: skip
    session.add(AuditRedaction(practice_id=practice_id, seq=1, erasure_id=0, hash=first_hash))
    session.flush()
    # --- end erasure -----------------------------------------------------------------------------------------
    # --- messages (issue 18): the reminder's e-mail, sent ------------------------------------------------------
    from warehouse.schema.messaging import MessageOutbox

    reminder_id = session.scalar(select(Reminder.id).where(Reminder.practice_id == practice_id))
    session.add(MessageOutbox(practice_id=practice_id, kind="vaccination_reminder", client_id=client.id,
                              patient_id=patient.id, reminder_id=reminder_id, channel="email", subject="Vaccinatie",
                              body=f"Beste Jansen-{tag}", state="sent", attempts=1, sent_at=day))  # fmt: skip
    session.flush()
    # --- end messages ----------------------------------------------------------------------------------------
    return PracticeRows(
        practice_id, franchise_id, vet.id, room.id, client.id, patient.id, appointment.id, user.id
    )


def build_world(session: Session, master_key: bytes) -> World:
    """Franchise A with practices a1 and a2, franchise B with practice b1; every tenant table populated."""
    world = World()
    for fcode, practice_codes in (("fa", ("a1", "a2")), ("fb", ("b1",))):
        franchise = add_franchise(session, code=fcode, name=f"Franchise {fcode}")
        world.franchises[fcode] = franchise.id
        shared = _franchise_resources(session, franchise.id)
        for code in practice_codes:
            practice = add_practice(session, franchise_id=franchise.id, code=code, name=f"Praktijk {code}",
                                    master_key=master_key)  # fmt: skip
            # What a Dutch invoice must carry about the practice (issuing refuses without it).
            practice.address, practice.postcode, practice.city = "Prinsengracht 263", "1016GV", "Amsterdam"
            practice.vat_number, practice.kvk_number = "NL859876543B01", "12345678"
            practice.iban = "NL91ABNA0417164300"
            world.practices[code] = populate_practice(
                session, practice.id, franchise.id, shared, master_key, code
            )
    manager = add_user(session, username="fm-a", full_name="Manager A", password=PASSWORD,
                       memberships=[(world.franchises["fa"], "franchise_manager")])  # fmt: skip
    world.franchise_manager_id = manager.id
    _referrals(session, world)
    return world


def _referrals(session: Session, world: World) -> None:
    """Referrals (issue 17): a1 and b1 each referred their patient to a2 (completed, so nothing is granted
    now), and a2's findings came back to each."""
    from warehouse.schema.referrals import Referral, ReferralReport

    day = dt.datetime(2026, 10, 1, 9, 0, tzinfo=TZ)
    to = world.practices["a2"]
    for code in ("a1", "b1"):
        rows = world.practices[code]
        referral = Referral(practice_id=rows.practice_id, patient_id=rows.patient_id, to_practice_id=to.practice_id,
                            reason="Second opinion", referring_vet_id=rows.user_id, referring_vet_name=f"Vet {code}",
                            status="completed", valid_from=day, valid_until=day + dt.timedelta(days=90),
                            consent_recorded_at=day, consent_recorded_by=rows.user_id, consent_how="in_person")  # fmt: skip
        session.add(referral)
        session.flush()
        session.add(ReferralReport(practice_id=rows.practice_id, referral_id=referral.id,
                                   from_practice_id=to.practice_id, findings="Healthy", written_by=to.user_id))  # fmt: skip
    session.flush()
