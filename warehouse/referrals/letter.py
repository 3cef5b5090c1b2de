"""The referral letter as PDF (fpdf2's core Helvetica, Latin-1, as the invoice): who refers whom to whom and
why, the owner's name and phone, the validity of the shared record, and the patient's recent diagnoses,
medication and weight. Made by the referring practice, from its own record."""

from __future__ import annotations

import datetime as dt

from fpdf import FPDF
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.practice_time import practice_zone
from warehouse.referrals.errors import ReferralError
from warehouse.referrals.queries import practice_directory, primary_owner

RECENT_DAYS = 365


def _latin1(value: object) -> str:
    return str(value or "").encode("latin-1", "replace").decode("latin-1")


def referral_letter_pdf(
    session: Session, practice_id: int, referral_id: int, *, master_key: bytes, compress: bool = True
) -> bytes:
    """The letter of one referral of ``practice_id`` (the referring practice's tenant session)."""
    referral = session.execute(
        text(
            """SELECT r.*, p.name AS patient_name, p.species, p.breed, p.date_of_birth, p.microchip
               FROM referral r JOIN patient p ON p.practice_id = r.practice_id AND p.id = r.patient_id
               WHERE r.practice_id = :p AND r.id = :r"""
        ),
        {"p": practice_id, "r": referral_id},
    ).one_or_none()
    if referral is None:
        raise ReferralError("referral", "This referral is not one of your practice's.")
    practices = {p.id: p for p in practice_directory(session)}
    zone = practice_zone(session, practice_id)
    owner = session.execute(
        text(
            """SELECT concat_ws(' ', c.title, coalesce(c.first_name, c.initials), c.last_name) AS name, c.phone_enc
               FROM client c WHERE c.practice_id = :p AND c.id = :owner"""
        ),
        {"p": practice_id, "owner": primary_owner(session, practice_id, referral.patient_id)},
    ).one_or_none()
    phone = (
        practice_cipher(session, practice_id, master_key).decrypt("phone", owner.phone_enc) if owner else None
    )
    since = referral.created_at - dt.timedelta(days=RECENT_DAYS)
    p = {"p": practice_id, "pat": referral.patient_id, "since": since}
    diagnoses = session.execute(
        text("""SELECT diagnosed_at, term FROM diagnosis WHERE practice_id = :p AND patient_id = :pat
                AND removed_at IS NULL AND diagnosed_at >= :since ORDER BY diagnosed_at DESC"""),
        p,
    ).all()  # fmt: skip
    medication = session.execute(
        text("""SELECT prescribed_at, product_name, dosage_instructions FROM prescription
                WHERE practice_id = :p AND patient_id = :pat AND prescribed_at >= :since
                ORDER BY prescribed_at DESC"""),
        p,
    ).all()  # fmt: skip
    weight = session.execute(
        text("""SELECT measured_at, weight_grams FROM weight_measurement WHERE practice_id = :p
                AND patient_id = :pat ORDER BY measured_at DESC LIMIT 1"""),
        p,
    ).one_or_none()  # fmt: skip

    pdf = FPDF()
    pdf.set_compression(compress)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Referral letter", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)

    def line(label: str, value: object) -> None:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(45, 6, _latin1(label))
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 6, _latin1(value or fmt.EMPTY), new_x="LMARGIN", new_y="NEXT")

    def heading(title: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")

    sender, receiver = practices.get(practice_id), practices.get(referral.to_practice_id)
    line("From", sender.label if sender else practice_id)
    line("To", receiver.label if receiver else referral.to_practice_id)
    line("Date", fmt.date(referral.created_at, tz=zone))
    line("Referring vet", referral.referring_vet_name)
    line("Reason", referral.reason)
    line(
        "Record shared",
        f"{fmt.date(referral.valid_from, tz=zone)} to {fmt.date(referral.valid_until, tz=zone)}",
    )
    heading("Patient")
    line(
        "Name",
        f"{referral.patient_name} ({referral.species}{', ' + referral.breed if referral.breed else ''})",
    )
    line("Born", fmt.date(referral.date_of_birth) if referral.date_of_birth else None)
    line("Chip", referral.microchip)
    line("Last weight", f"{fmt.number(weight.weight_grams / 1000, 1)} kg on {fmt.date(weight.measured_at, tz=zone)}"
         if weight else None)  # fmt: skip
    heading("Owner")
    line("Name", owner.name if owner else None)
    line("Phone", phone)
    line(
        "Consent",
        f"given {referral.consent_how.replace('_', ' ')} on {fmt.date(referral.consent_recorded_at, tz=zone)}",
    )
    heading(f"Diagnoses (last {RECENT_DAYS} days)")
    for row in diagnoses or ():
        line(fmt.date(row.diagnosed_at, tz=zone), row.term)
    if not diagnoses:
        line("", "None recorded")
    heading(f"Medication (last {RECENT_DAYS} days)")
    for row in medication or ():
        line(
            fmt.date(row.prescribed_at, tz=zone),
            f"{row.product_name} {row.dosage_instructions or ''}".strip(),
        )
    if not medication:
        line("", "None prescribed")
    return bytes(pdf.output())
