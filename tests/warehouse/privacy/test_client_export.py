"""The right of access on the factories' world under RLS: every section carries the seeded values, the JSON is
stable and ISO, the PDF is a PDF with the client's name and Dutch dates and amounts, the export is audited, and
another practice's client cannot be exported from here."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from warehouse.clients.card import client_card
from warehouse.kernel.tenancy import AccessContext
from warehouse.privacy.consent import Purpose, record_consent
from warehouse.privacy.export import export_client, to_json
from warehouse.privacy.export_pdf import to_pdf
from warehouse.records.patient_record import patient_record
from warehouse.security.permissions import Actor


@pytest.fixture
def exported(ws_db):
    """a1's client after a day at the desk: a consent withdrawn by phone, the card and the record opened."""
    a1 = ws_db.world.practices["a1"]
    context = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(context) as session:
        record_consent(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}), a1.practice_id,
                       a1.client_id, Purpose.REMINDERS_EMAIL, False, "phone", "Wil geen e-mail meer")  # fmt: skip
        client_card(session, a1.practice_id, a1.client_id, master_key=MASTER_KEY)
        patient_record(session, a1.practice_id, a1.patient_id, today=ws_db.week.today)
    with ws_db.as_app(context) as session:
        export = export_client(session, a1.practice_id, a1.client_id, MASTER_KEY)
    return ws_db, a1, export


def test_every_section_holds_the_seeded_values(exported):
    db, a1, export = exported
    contact = export.contact
    assert (contact.name, contact.email, contact.phone, contact.address, contact.postcode, contact.city) == (
        "J. Jansen-a1", "jansen.a1@example.nl", "06-12345678", "Damrak 1", "1012AB", "Amsterdam",
    )  # fmt: skip
    current = {c.purpose: (c.granted, c.how, c.recorded_by) for c in export.consents}
    assert current["reminders_email"] == (False, "phone", "Vet a1")
    assert current["analytics"] == (False, None, None)
    assert [(c.purpose, c.granted, c.note) for c in export.consent_history] == [
        ("reminders_email", False, "Wil geen e-mail meer"), ("reminders_email", True, None),
    ]  # fmt: skip
    [animal] = export.animals
    assert (animal.name, animal.species, animal.breed, animal.microchip) == (
        "Bello-a1", "dog", "Labrador", "528140000123456",
    )  # fmt: skip
    [visit] = animal.visits
    assert (visit.vet, visit.reason, visit.subjective, visit.objective, visit.plan) == (
        "Vet a1", "Jaarlijkse controle", "Eet goed", "T 38.5", "Vaccinatie",
    )  # fmt: skip
    assert [d.term for d in visit.diagnoses] == ["Gezond"]
    assert [(v.vaccine_name, str(v.given_on)) for v in animal.vaccinations] == [("Nobivac DHP", "2026-11-10")]
    assert [(p.product_name, str(p.quantity)) for p in animal.prescriptions] == [("Meloxicam", "1.000")]
    [glucose] = animal.lab_results
    assert (glucose.code, glucose.value, glucose.unit, glucose.reference) == ("GLU", "5.4", "mmol/L", "3.5–7")  # fmt: skip
    [invoice] = export.invoices
    assert (invoice.number, invoice.total_incl_cents, [ln.description for ln in invoice.lines]) == (
        "2026-a1-0001", 5687, ["Consult"],
    )  # fmt: skip
    assert [(p.amount_cents, p.method, p.invoice_number) for p in export.payments] == [
        (5687, "pin", "2026-a1-0001")
    ]
    assert [(m.kind, m.animal, str(m.due_on)) for m in export.messages] == [
        ("vaccination", "Bello-a1", "2029-10-25")
    ]
    reads = [(r.what, r.animal, r.user, r.view) for r in export.reads]
    assert ("client", None, "Vet a1", "records.client_card") in reads
    assert any(
        what == "patient" and animal == "Bello-a1" and user == "Vet a1" for what, animal, user, _ in reads
    )
    with db.system() as session:
        entry = session.execute(
            text("SELECT actor_user_id, entity_ids, detail FROM audit_log WHERE practice_id = :p "
                 "AND action = 'export'"), {"p": a1.practice_id},
        ).one()  # fmt: skip
    assert (entry.actor_user_id, entry.entity_ids, entry.detail["animals"]) == (a1.user_id, [a1.client_id], 1)


def test_json_has_stable_documented_keys_iso_dates_and_the_values(exported):
    _, a1, export = exported
    document = json.loads(to_json(export))
    assert list(document) == ["format_version", "generated_at", "practice", "client_id", "contact", "consents",
                              "consent_history", "animals", "invoices", "payments", "messages", "reads"]  # fmt: skip
    assert document["format_version"] == 1 and document["client_id"] == a1.client_id
    assert document["contact"]["email"] == "jansen.a1@example.nl"
    visit = document["animals"][0]["visits"][0]
    assert visit["started_at"] == "2026-11-10T08:00:00+00:00"  # 09:00 in Amsterdam, written in UTC
    assert visit["diagnoses"][0]["term"] == "Gezond"
    assert document["animals"][0]["vaccinations"][0]["given_on"] == "2026-11-10"
    assert document["invoices"][0]["lines"][0]["quantity"] == "1.000"
    assert to_json(export) == to_json(export)  # the same export writes the same bytes


def _pdf_text(pdf: bytes) -> str:
    """The text drawn in an uncompressed fpdf2 file (its content streams), enough to find words in."""
    return pdf.decode("latin-1").replace("\\(", "(").replace("\\)", ")")  # PDF strings escape parentheses


def test_the_pdf_is_readable_with_headings_dutch_dates_and_amounts(exported):
    _, _, export = exported
    pdf = to_pdf(export, compress=False)
    assert pdf.startswith(b"%PDF")
    drawn = _pdf_text(pdf)
    for words in ("Personal data of J. Jansen-a1", "Contact details", "jansen.a1@example.nl", "Consents",
                  "Animal: Bello-a1", "Visits of Bello-a1 (1)", "Nobivac DHP", "Lab results of Bello-a1",
                  "Invoices", "2026-a1-0001", "Payments", "Messages (reminders)", "Who read your records",
                  "10 nov 2026", "EUR 56,87", "1 x Consult", "Wil geen e-mail meer"):  # fmt: skip
        assert words in drawn, words
    compressed = to_pdf(export)
    assert compressed.startswith(b"%PDF") and len(compressed) < len(pdf) / 2  # the default compresses


def test_another_practices_client_cannot_be_exported_here(ws_db):
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    with ws_db.as_app(AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)) as session:
        with pytest.raises(LookupError, match="does not exist"):
            export_client(session, b1.practice_id, b1.client_id, MASTER_KEY)
