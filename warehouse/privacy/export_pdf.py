"""The right-of-access export as a readable PDF: a heading per section, Dutch dates and amounts, in the practice's
local time. fpdf2 with its core Helvetica font, as the invoice PDF (``warehouse.billing.pdf``): Latin-1 text, so
a character outside it prints as "?"; the JSON file carries every value exactly."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from fpdf import FPDF

from warehouse.kernel import formatting as fmt
from warehouse.privacy.consent import HOW_LABELS, PURPOSE_LABELS, Purpose
from warehouse.privacy.export import ClientExport, Consent

TABLE_PT = 7.5  # Courier at 7.5 pt: 119 characters across A4 between 10 mm margins
WRAP_CHARS = 105  # Helvetica 9 pt: a line of mixed text this long fits across the page
SEX_LABELS = {"male": "male", "female": "female", "male_neutered": "male, neutered",
              "female_neutered": "female, neutered", "unknown": "sex unknown"}  # fmt: skip


def _latin1(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("–", "-").replace("€", "EUR").encode("latin-1", "replace").decode("latin-1")


class _Document:
    """Headings and running text in Helvetica; tables in Courier, one text line a row with the columns padded to
    their widths in characters. fpdf2 spends its time per cell and, in wrapped text, per character of a line
    measured again for every character added: its ``table()`` took seconds for the ~2,000 reads of a client with
    ten years of history, one monospaced line a row takes milliseconds — and reads as a table."""

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

    def line(self, text: str) -> None:
        """Running text, wrapped by character count (the proportional font's rare overlong piece by fpdf2)."""
        self.pdf.set_font("Helvetica", "", 9)
        for piece in textwrap.wrap(_latin1(text), WRAP_CHARS) or [""]:
            if self.pdf.get_string_width(piece) <= self.pdf.epw:
                self.pdf.cell(0, 4.5, piece, new_x="LMARGIN", new_y="NEXT")
            else:
                self.pdf.multi_cell(0, 4.5, piece, new_x="LMARGIN", new_y="NEXT")

    def facts(self, pairs: Sequence[tuple[str, object]]) -> None:
        for label, value in pairs:
            self.pdf.set_font("Helvetica", "B", 9)
            self.pdf.cell(45, 5, _latin1(label))
            self.pdf.set_font("Helvetica", "", 9)
            self.pdf.cell(0, 5, _latin1(value if value not in (None, "") else fmt.EMPTY),
                          new_x="LMARGIN", new_y="NEXT")  # fmt: skip

    def table(self, columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[object]], empty: str) -> None:
        """``columns``: (heading, width in characters); a value too wide is cut with "..."; the heading again on
        every new page."""
        if not rows:
            self.line(empty)
            return
        self._table_head(columns)
        self.pdf.set_font("Courier", "", TABLE_PT)
        for row in rows:
            if self.pdf.will_page_break(4):
                self.pdf.add_page()
                self._table_head(columns)
                self.pdf.set_font("Courier", "", TABLE_PT)
            cells = (
                _fit(_latin1(fmt.EMPTY if v in (None, "") else v), w)
                for (_, w), v in zip(columns, row, strict=True)
            )
            self.pdf.cell(0, 4, " ".join(cells), new_x="LMARGIN", new_y="NEXT")

    def _table_head(self, columns: Sequence[tuple[str, int]]) -> None:
        self.pdf.set_font("Courier", "B", TABLE_PT)
        self.pdf.set_fill_color(235, 235, 235)
        heads = " ".join(_fit(_latin1(head), width) for head, width in columns)
        self.pdf.cell(0, 5, heads, fill=True, new_x="LMARGIN", new_y="NEXT")

    def when(self, moment: object) -> str:
        return fmt.date_time(moment, self.tz)  # type: ignore[arg-type]

    def day(self, day: object) -> str:
        return fmt.date(day, tz=self.tz)  # type: ignore[arg-type]


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 3] + "..."


def _consent_row(doc: _Document, c: Consent) -> list[object]:
    return [PURPOSE_LABELS[Purpose(c.purpose)], "given" if c.granted else "not given",
            doc.when(c.recorded_at) if c.recorded_at else "never asked", c.recorded_by,
            HOW_LABELS.get(c.how or "", None), "see below" if c.note else None]  # fmt: skip


def _consent_notes(doc: _Document, consents: Sequence[Consent]) -> None:
    """Notes in full under the table (a table cell would cut them)."""
    for c in consents:
        if c.note:
            doc.line(
                f"Note of {doc.when(c.recorded_at)} on {PURPOSE_LABELS[Purpose(c.purpose)].lower()}: {c.note}"
            )


def _reads_per_day(doc: _Document, export: ClientExport) -> list[tuple[object, ...]]:
    """The reads grouped by local day, user, record, view and session, in the order they began."""
    days: Counter[tuple[object, ...]] = Counter()
    for r in export.reads:
        what = f"record of {r.animal}" if r.what == "patient" else "client card"
        days[(doc.day(r.occurred_at), r.user, what, r.view, r.session)] += 1
    return [(*key, times) for key, times in days.items()]


def _invoice_rows(doc: _Document, export: ClientExport) -> list[tuple[object, ...]]:
    """Each invoice's total, then its lines under it (one row each, so none is cut)."""
    rows: list[tuple[object, ...]] = []
    for i in export.invoices:
        rows.append((i.number, doc.day(i.issued_on), i.status, "Total", fmt.euros(i.total_incl_cents),
                     fmt.euros(i.vat_cents)))  # fmt: skip
        qty = (fmt.measured(str(ln.quantity.normalize())) for ln in i.lines)
        rows += [("", "", "", f"  {q} x {ln.description}", fmt.euros(ln.line_incl_cents), "")
                 for q, ln in zip(qty, i.lines, strict=True)]  # fmt: skip
    return rows


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
    heads = (("Purpose", 44), ("Consent", 9), ("Recorded", 17), ("By", 16), ("How", 12), ("Note", 15))
    doc.heading("Consents")
    doc.table(heads, [_consent_row(doc, c) for c in export.consents], "No consent recorded.")
    _consent_notes(doc, export.consents)
    doc.heading("Consent history", 11)
    doc.table(heads, [_consent_row(doc, c) for c in export.consent_history], "No consent recorded.")
    _consent_notes(doc, export.consent_history)
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
        doc.table((("Given", 12), ("Vaccine", 50), ("Batch", 20), ("Next due", 12)),
                  [(doc.day(v.given_on), v.vaccine_name, v.batch_number, doc.day(v.due_on))
                   for v in animal.vaccinations], "No vaccinations.")  # fmt: skip
        doc.heading(f"Prescriptions of {animal.name}", 11)
        doc.table((("Date", 12), ("Medicine", 30), ("Quantity", 8), ("Instructions", 40), ("Prescribed by", 22)),
                  [(doc.day(p.prescribed_at), p.product_name, fmt.measured(str(p.quantity)), p.dosage_instructions,
                    p.prescribed_by) for p in animal.prescriptions], "No prescriptions.")  # fmt: skip
        doc.heading(f"Lab results of {animal.name}", 11)
        doc.table((("Date", 12), ("Test", 26), ("Result", 26), ("Value", 12), ("Unit", 12), ("Reference", 16),
                   ("Flag", 6)),
                  [(doc.day(r.observed_at), r.test, r.name or r.code, fmt.measured(r.value), r.unit,
                    r.reference, r.abnormal_flag) for r in animal.lab_results], "No lab results.")  # fmt: skip
    doc.heading("Invoices")
    doc.table((("Number", 16), ("Date", 12), ("Status", 8), ("What", 50), ("Amount incl. VAT", 16), ("VAT", 12)),
              _invoice_rows(doc, export), "No invoices.")  # fmt: skip
    doc.heading("Payments")
    doc.table((("Date", 12), ("Amount", 14), ("Method", 12), ("Invoice", 20)),
              [(doc.day(p.paid_at), fmt.euros(p.amount_cents), p.method, p.invoice_number) for p in export.payments],
              "No payments.")  # fmt: skip
    doc.heading("Messages (reminders)")
    doc.table((("Due", 12), ("Kind", 20), ("Animal", 24), ("Status", 10), ("Channel", 8), ("Sent", 18)),
              [(doc.day(m.due_on), m.kind, m.animal, m.status, m.channel, doc.when(m.sent_at) if m.sent_at else None)
               for m in export.messages], "No messages.")  # fmt: skip
    doc.heading("Who read your records")
    doc.line("Per day: who opened your client card or an animal's record, where, and how often that day (the JSON file "
             "has each read with its time).")  # fmt: skip
    doc.table((("Day", 12), ("Who", 24), ("What", 30), ("Where", 28), ("Session", 12), ("Times", 6)),
              _reads_per_day(doc, export), "Nobody read them.")  # fmt: skip
    return bytes(doc.pdf.output())
