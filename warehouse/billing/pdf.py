"""The printable invoice (and credit note) as PDF, with fpdf2's core Helvetica font (Latin-1: amounts are
written "EUR", names with accents print as they are)."""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.billing.invoice_views import InvoiceView, invoice_view
from warehouse.kernel.ciphers import practice_cipher
from warehouse.schema.clients import Client
from warehouse.schema.tenancy import Tenant

STATUS_LABELS = {
    "draft": "CONCEPT",
    "issued": "",
    "paid": "BETAALD",
    "credited": "GECREDITEERD",
    "void": "VERVALLEN",
}


def euros(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}EUR {whole:,}".replace(",", ".") + f",{rest:02d}"


def _latin1(value: str | None) -> str:
    return (value or "").encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(session: Session, practice_id: int, invoice_id: int, *, master_key: bytes,
                compress: bool = True) -> bytes:  # fmt: skip
    """The invoice as PDF bytes. The client's address is decrypted for printing only."""
    view = invoice_view(session, practice_id, invoice_id)
    if view is None:
        raise LookupError(f"invoice {invoice_id} is not visible here")
    practice = session.scalar(select(Tenant).where(Tenant.id == practice_id))
    client = session.get(Client, (practice_id, view.client_id))
    address = (
        practice_cipher(session, practice_id, master_key).decrypt("address", client.address_enc)
        if client
        else None
    )
    return render(view, practice=PracticeDetails.of(practice), client_address=address,
                  client_postcode=client.postcode if client else None, client_city=client.city if client else None,
                  compress=compress)  # fmt: skip


@dataclass(frozen=True)
class PracticeDetails:
    """The seller's part of a Dutch invoice: name and address, VAT number, KvK number, and where to pay."""

    name: str
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    vat_number: str | None = None
    kvk_number: str | None = None
    iban: str | None = None

    @classmethod
    def of(cls, practice: Tenant | None) -> PracticeDetails:
        if practice is None:
            return cls("")
        return cls(practice.name, practice.address, practice.postcode, practice.city, practice.vat_number,
                   practice.kvk_number, practice.iban)  # fmt: skip


def render(view: InvoiceView, *, practice: PracticeDetails, client_address: str | None,
           client_postcode: str | None, client_city: str | None, compress: bool = True) -> bytes:  # fmt: skip
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(f"Factuur {view.number}")
    pdf.set_author(_latin1(practice.name))
    pdf.add_page()
    pdf.set_auto_page_break(auto=True, margin=20)
    credit = view.credit_of is not None
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, _latin1(practice.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    place = " ".join(p for p in (practice.postcode, practice.city) if p)
    for line in (practice.address, place):
        if line:
            pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    registrations = [f"{label} {value}" for label, value in (("BTW-nr.", practice.vat_number),
                     ("KvK", practice.kvk_number), ("IBAN", practice.iban)) if value]  # fmt: skip
    if registrations:
        pdf.cell(0, 5, _latin1("  ·  ".join(registrations)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    # Client block (left) and invoice facts (right)
    top = pdf.get_y()
    pdf.set_font("Helvetica", "", 10)
    for line in (view.client, client_address, " ".join(p for p in (client_postcode, client_city) if p)):
        if line:
            pdf.cell(95, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(120, top)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 7, "CREDITNOTA" if credit else "FACTUUR", new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    facts = [("Nummer", view.number), ("Datum", f"{view.issued_on:%d-%m-%Y}")]
    if view.due_on and not credit:
        facts.append(("Vervaldatum", f"{view.due_on:%d-%m-%Y}"))
    if credit:
        facts.append(("Credit op factuur", view.credit_of or ""))
    if view.patient:
        facts.append(("Patiënt", view.patient))
    if label := STATUS_LABELS.get(view.status):
        facts.append(("Status", label))
    for name, value in facts:
        pdf.set_x(120)
        pdf.cell(35, 5, name)
        pdf.cell(0, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + 30) + 6)
    # Lines
    widths = (78, 16, 24, 20, 14, 28)
    heads = ("Omschrijving", "Aantal", "Prijs", "Korting", "BTW", "Bedrag excl.")
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_fill_color(235, 235, 235)
    for width, head in zip(widths, heads, strict=True):
        pdf.cell(width, 7, head, border="B", fill=True, align="L" if head == "Omschrijving" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for row in view.lines.iter_rows(named=True):
        qty = f"{row['quantity']:g}".replace(".", ",")
        values = (row["description"], qty, euros(row["unit_price_cents"]),
                  euros(row["discount_cents"]) if row["discount_cents"] else "",
                  f"{row['vat_rate_bp'] / 100:g}%", euros(row["line_excl_cents"]))  # fmt: skip
        for width, value in zip(widths, values, strict=True):
            text_value = _latin1(value)
            if width == widths[0] and pdf.get_string_width(text_value) > width - 2:
                while text_value and pdf.get_string_width(text_value + "...") > width - 2:
                    text_value = text_value[:-1]
                text_value += "..."
            pdf.cell(width, 6, text_value, align="L" if width == widths[0] else "R")
        pdf.ln()
    pdf.ln(3)

    # Totals with VAT per rate
    def total(label: str, cents: int, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.set_x(110)
        pdf.cell(60, 6, label)
        pdf.cell(20, 6, euros(cents), align="R", new_x="LMARGIN", new_y="NEXT")

    total("Subtotaal excl. BTW", view.total_excl_cents)
    for rate in sorted(view.vat_by_rate, reverse=True):
        total(f"BTW {rate / 100:g}% over {euros(view.excl_by_rate[rate])}", view.vat_by_rate[rate])
    total("Totaal incl. BTW", view.total_incl_cents, bold=True)
    if view.paid_cents:
        total("Betaald", view.paid_cents)
    if view.status == "issued" and not credit:
        total("Te betalen", view.open_cents, bold=True)
    pdf.ln(10)
    pdf.set_font("Helvetica", "", 8)
    if credit:
        note = f"Deze creditnota vervangt factuur {view.credit_of}."
    else:
        note = (f"Gelieve binnen de betaaltermijn te betalen onder vermelding van factuurnummer {view.number}. "
                "Diergeneesmiddelen 9% BTW, overige leveringen en diensten 21% BTW.")  # fmt: skip
        if practice.iban:
            note += f" IBAN {practice.iban} t.n.v. {practice.name}."
    pdf.multi_cell(0, 4, _latin1(note))
    return bytes(pdf.output())
