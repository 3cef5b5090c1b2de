"""What a Dutch invoice must carry about the practice, checked on the practice as saved (before issuing) and
on the details as typed (before saving), by the same rules."""

from __future__ import annotations

import re
from collections.abc import Mapping

from warehouse.schema.tenancy import Tenant

# What a Dutch invoice must say about the practice (Wet OB art. 35a, Handelsregisterwet art. 20).
PRACTICE_DETAILS = {"address": "address", "postcode": "postcode", "city": "city", "vat_number": "VAT number",
                    "kvk_number": "KvK number", "iban": "IBAN"}  # fmt: skip
_VAT_NUMBER = re.compile(r"^NL\d{9}B\d{2}$")
_KVK = re.compile(r"^\d{8}$")


def iban_valid(iban: str) -> bool:
    """ISO 13616: two letters, two check digits, the account; the number mod 97 is 1."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def practice_details_problems(practice: Tenant) -> list[str]:
    """What the practice lacks (or has malformed) of what its invoices must carry; empty when complete."""
    missing = [
        label for column, label in PRACTICE_DETAILS.items() if not (getattr(practice, column) or "").strip()
    ]
    problems = [f"{', '.join(missing)} missing"] if missing else []
    if practice.vat_number and not _VAT_NUMBER.match(practice.vat_number.replace(" ", "").upper()):
        problems.append(f"VAT number {practice.vat_number} is not NL + 9 digits + B + 2 digits")
    if practice.kvk_number and not _KVK.match(practice.kvk_number.strip()):
        problems.append(f"KvK number {practice.kvk_number} is not 8 digits")
    if practice.iban and not iban_valid(practice.iban):
        problems.append(f"IBAN {practice.iban} is not a valid IBAN")
    return problems


_POSTCODE = re.compile(r"^\d{4} ?[A-Z]{2}$")
_DETAIL_LENGTHS = {"address": 200, "city": 100}


def practice_detail_errors(values: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with practice details as typed, per field (the columns of ``PRACTICE_DETAILS``): the same
    rules as :func:`practice_details_problems`, so details that save are details that issue; empty when fine."""
    errors: dict[str, str] = {}
    for column, label in PRACTICE_DETAILS.items():
        value = (values.get(column) or "").strip()
        if not value:
            errors[column] = f"Enter the {label}; every invoice must carry it."
        elif len(value) > _DETAIL_LENGTHS.get(column, 200):
            errors[column] = f"The {label} is at most {_DETAIL_LENGTHS[column]} characters."
    postcode = (values.get("postcode") or "").strip().upper()
    if "postcode" not in errors and not _POSTCODE.match(postcode):
        errors["postcode"] = "A Dutch postcode is 4 digits and 2 letters, e.g. 1016 GV."
    vat = (values.get("vat_number") or "").replace(" ", "").upper()
    if "vat_number" not in errors and not _VAT_NUMBER.match(vat):
        errors["vat_number"] = "A Dutch VAT number is NL, 9 digits, B and 2 digits, e.g. NL859876543B01."
    if "kvk_number" not in errors and not _KVK.match((values.get("kvk_number") or "").strip()):
        errors["kvk_number"] = "A KvK number is 8 digits."
    if "iban" not in errors and not iban_valid(values.get("iban") or ""):
        errors["iban"] = "This is not a valid IBAN (check the digits; e.g. NL91 ABNA 0417 1643 00)."
    return errors
