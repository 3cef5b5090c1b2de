"""The right-of-access export as a readable PDF: a heading per section, Dutch dates and amounts, in the practice's
local time. fpdf2 with its core Helvetica font, as the invoice PDF (``warehouse.billing.pdf``): Latin-1 text, so
a character outside it prints as "?"; the JSON file carries every value exactly."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from warehouse.kernel import formatting as fmt
from warehouse.privacy.consent import HOW_LABELS, PURPOSE_LABELS, Purpose
from warehouse.privacy.export import ClientExport, Consent

SEX_LABELS = {"male": "male", "female": "female", "male_neutered": "male, neutered",
              "female_neutered": "female, neutered", "unknown": "sex unknown"}  # fmt: skip
HEADINGS = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))


def _latin1(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("–", "-").replace("€", "EUR").encode("latin-1", "replace").decode("latin-1")


class _Document:
    def __init__(self, title: str, tz: ZoneInfo, *, compress: bool) -> None:
        self.tz = tz
        self.pdf = FPDF(format="A4")
        self.pdf.set_compression(compress)
        self.pdf.set_title(_latin1(title))
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.ln(3)
        self.pdf.set_font("Helvetica", "B", size)
        self.pdf.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", "", 9)

    def line(self, text: str) -> None:
        self.pdf.set_font("Helvetica", "", 9)
        self.pdf.multi_cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    def facts(self, pairs: Sequence[tuple[str, object]]) -> None:
        for label, value in pairs:
            self.pdf.set_font("Helvetica", "B", 9)
            self.pdf.cell(45, 5, _latin1(label))
            self.pdf.set_font("Helvetica", "", 9)
            self.pdf.multi_cell(0, 5, _latin1(value if value not in (None, "") else fmt.EMPTY),
                                new_x="LMARGIN", new_y="NEXT")  # fmt: skip

    def table(self, heads: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> None:
        if not rows:
            self.line(empty)
            return
        self.pdf.set_font("Helvetica", "", 8)
        with self.pdf.table(headings_style=HEADINGS, line_height=5, text_align="LEFT") as table:
            table.row([_latin1(h) for h in heads])
            for row in rows:
                table.row([_latin1(fmt.EMPTY if v in (None, "") else v) for v in row])

    def when(self, moment: object) -> str:
        return fmt.date_time(moment, self.tz)  # type: ignore[arg-type]

    def day(self, day: object) -> str:
        return fmt.date(day, tz=self.tz)  # type: ignore[arg-type]


def _consent_row(doc: _Document, c: Consent) -> list[object]:
    return [PURPOSE_LABELS[Purpose(c.purpose)], "given" if c.granted else "not given",
            doc.when(c.recorded_at) if c.recorded_at else "never asked", c.recorded_by,
            HOW_LABELS.get(c.how or "", None), c.note]  # fmt: skip


def to_pdf(export: ClientExport, *, tz: ZoneInfo = fmt.DEFAULT_TZ, compress: bool = True) -> bytes:
    """The export as PDF bytes, times in ``tz`` (the practice's zone)."""
    contact = export.contact
    doc = _Document(f"Personal data of {contact.name}", tz, compress=compress)
    doc.heading(f"Personal data of {contact.name}", 16)
    doc.line(f"Held by {export.practice}, exported {doc.when(export.generated_at)} (client number "
             f"{export.client_id}). Everything the practice keeps about you and your animals.")  # fmt: skip
    doc.heading("Contact details")
    doc.facts([("Name", contact.name), ("Address", contact.address),
               ("Postcode and city", " ".join(p for p in (contact.postcode, contact.city) if p)),
               ("Phone", contact.phone), ("E-mail", contact.email), ("IBAN", contact.iban),
               ("Preferred channel", contact.preferred_channel), ("Client since", doc.day(contact.registered_at)),
               ("Active", "yes" if contact.active else "no"), ("Animana number", contact.animana_id)])  # fmt: skip
    heads = ("Purpose", "Consent", "Recorded", "By", "How", "Note")
    doc.heading("Consents")
    doc.table(heads, [_consent_row(doc, c) for c in export.consents], "No consent recorded.")
    doc.heading("Consent history", 11)
    doc.table(heads, [_consent_row(doc, c) for c in export.consent_history], "No consent recorded.")
    for animal in export.animals:
        doc.heading(f"Animal: {animal.name}")
        doc.facts([("Species and breed", " · ".join(p for p in (animal.species, animal.breed) if p)),
                   ("Sex", SEX_LABELS.get(animal.sex, animal.sex)), ("Born", doc.day(animal.date_of_birth)),
                   ("Microchip", animal.microchip),
                   ("Deceased", doc.day(animal.deceased_on) if animal.deceased else "no")])  # fmt: skip
        doc.heading(f"Visits of {animal.name} ({len(animal.visits)})", 11)
        if not animal.visits:
            doc.line("No visits.")
        for v in animal.visits:
            diagnoses = "; ".join(f"{d.term} ({d.status})" for d in v.diagnoses)
            notes = " / ".join(n for n in (v.subjective, v.objective, v.assessment, v.plan) if n)
            doc.line(" · ".join(p for p in (doc.when(v.started_at), v.vet, v.reason, diagnoses and f"Diagnosis: "
                                                f"{diagnoses}", notes) if p))  # fmt: skip
        doc.heading(f"Vaccinations of {animal.name}", 11)
        doc.table(("Given", "Vaccine", "Batch", "Next due"),
                  [(doc.day(v.given_on), v.vaccine_name, v.batch_number, doc.day(v.due_on))
                   for v in animal.vaccinations], "No vaccinations.")  # fmt: skip
        doc.heading(f"Prescriptions of {animal.name}", 11)
        doc.table(("Date", "Medicine", "Quantity", "Instructions", "Prescribed by"),
                  [(doc.day(p.prescribed_at), p.product_name, fmt.measured(str(p.quantity)), p.dosage_instructions,
                    p.prescribed_by) for p in animal.prescriptions], "No prescriptions.")  # fmt: skip
        doc.heading(f"Lab results of {animal.name}", 11)
        doc.table(("Date", "Test", "Result", "Value", "Unit", "Reference", "Flag"),
                  [(doc.day(r.observed_at), r.test, r.name or r.code, fmt.measured(r.value), r.unit,
                    r.reference, r.abnormal_flag) for r in animal.lab_results], "No lab results.")  # fmt: skip
    doc.heading("Invoices")
    doc.table(("Number", "Date", "Status", "Total", "VAT", "Lines"),
              [(i.number, doc.day(i.issued_on), i.status, fmt.euros(i.total_incl_cents), fmt.euros(i.vat_cents),
                "; ".join(f"{ln.description} {fmt.euros(ln.line_incl_cents)}" for ln in i.lines))
               for i in export.invoices], "No invoices.")  # fmt: skip
    doc.heading("Payments")
    doc.table(("Date", "Amount", "Method", "Invoice"),
              [(doc.day(p.paid_at), fmt.euros(p.amount_cents), p.method, p.invoice_number) for p in export.payments],
              "No payments.")  # fmt: skip
    doc.heading("Messages (reminders)")
    doc.table(("Due", "Kind", "Animal", "Status", "Channel", "Sent"),
              [(doc.day(m.due_on), m.kind, m.animal, m.status, m.channel, doc.when(m.sent_at) if m.sent_at else None)
               for m in export.messages], "No messages.")  # fmt: skip
    doc.heading("Who read your records")
    doc.table(("When", "Who", "What", "Where", "Session"),
              [(doc.when(r.occurred_at), r.user, f"record of {r.animal}" if r.what == "patient" else "client card",
                r.view, r.session) for r in export.reads], "Nobody read them.")  # fmt: skip
    return bytes(doc.pdf.output())
