"""Validation of identifiers and contact details staff type in, with messages that say what is wrong."""

from __future__ import annotations

import re

import phonenumbers


class InvalidMicrochip(ValueError):
    """The text is not an ISO 11784 15-digit transponder code."""


def normalise_microchip(raw: str) -> str:
    """Return the 15-digit code, accepting the spaces, dots and dashes people type between digit groups.

    ISO 11784 (FDX-B): 15 decimal digits, the first three a country code (ISO 3166 numeric, 001–899) or a
    manufacturer code (900–998). 000 and 999 (reserved/test transponders) are not valid on an animal.
    """
    compact = re.sub(r"[\s.\-]", "", raw)
    if not compact:
        raise InvalidMicrochip("microchip is empty")
    if not compact.isascii() or not compact.isdigit():
        raise InvalidMicrochip(f"microchip {raw!r} must contain only digits")
    if len(compact) != 15:
        raise InvalidMicrochip(f"microchip must have 15 digits, got {len(compact)}")
    prefix = int(compact[:3])
    if prefix == 0 or prefix == 999:
        raise InvalidMicrochip(
            f"microchip prefix {compact[:3]} is reserved (not a country or manufacturer code)"
        )
    return compact


class InvalidPostcode(ValueError):
    """The text is not a Dutch postcode PostNL hands out."""


# PostNL never uses these letter pairs (SA, SD and SS for their connotations); they are not real postcodes.
_POSTCODE_LETTERS_NOT_USED = frozenset({"SA", "SD", "SS"})


def normalise_postcode(raw: str) -> str:
    """Return the postcode as PostNL writes it, ``1234 AB``, accepting any case and spacing (``1234ab``,
    ``1234  Ab``). Four digits, the first not 0, then two letters; SA, SD and SS are never used."""
    compact = re.sub(r"\s", "", raw).upper()
    if not compact:
        raise InvalidPostcode("postcode is empty")
    if not re.fullmatch(r"[0-9]{4}[A-Z]{2}", compact):
        raise InvalidPostcode(f"postcode {raw.strip()!r} is not four digits and two letters, like 1234 AB")
    if compact[0] == "0":
        raise InvalidPostcode(f"postcode {raw.strip()!r} cannot start with 0 (Dutch postcodes run 1000–9999)")
    if compact[4:] in _POSTCODE_LETTERS_NOT_USED:
        raise InvalidPostcode(
            f"postcode {raw.strip()!r} cannot exist: PostNL never uses the letters {compact[4:]}"
        )
    return f"{compact[:4]} {compact[4:]}"


class InvalidPhone(ValueError):
    """The text is not a number that can be dialled in the Netherlands or abroad."""


# What people type between digits. Letters are refused although phonenumbers reads vanity numbers
# ("0800-FLOWERS"): at a practice's desk a letter in a phone number is a typing error.
_PHONE_CHARACTERS = re.compile(r"[0-9+\s().\-/]+")


def normalise_phone(raw: str, *, default_region: str = "NL") -> str:
    """Return the number in E.164 (``+31612345678``). Without a country code it is read as a Dutch number
    (``06-1234 5678``, ``020 123 4567``); ``0044 …`` and ``+44 …`` are read as international. The number must
    be a valid one of its numbering plan (phonenumbers' metadata), not merely the right length."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("phone number is empty")
    if not _PHONE_CHARACTERS.fullmatch(text):
        raise InvalidPhone(f"phone number {text!r} may contain only digits, spaces, +, -, ., / and brackets")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"phone number {text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        where = "Dutch" if number.country_code == 31 else f"+{number.country_code}"
        raise InvalidPhone(
            f"phone number {text!r} is not a valid {where} number; a Dutch number has 10 digits "
            "(06-1234 5678, 020-123 4567), an international one starts with + or 00 and its country code"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """Whether a normalised number can receive an SMS (a mobile number, or one its plan cannot tell apart)."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


class InvalidEmail(ValueError):
    """The text is not an e-mail address mail can be delivered to."""


_EMAIL_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")


def normalise_email(raw: str) -> str:
    """Return the address trimmed and in lower case (the form the blind index hashes). The shape is checked
    as far as it decides delivery: one @, a local part without spaces or leading/trailing/double dots, a
    domain of at least two labels whose last (the top-level domain) is letters. Whether the mailbox exists
    only a mail server can say. A domain in Unicode must be typed in its ASCII (xn--) form."""
    address = raw.strip().lower()
    if not address:
        raise InvalidEmail("e-mail address is empty")
    if len(address) > 254:
        raise InvalidEmail(f"e-mail address is {len(address)} characters long; at most 254 are possible")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail(
            f"e-mail address {raw.strip()!r} needs a name, an @ and a domain, like naam@voorbeeld.nl"
        )
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail(
            f"the part before the @ in {raw.strip()!r} has a character or dot that is not allowed"
        )
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidEmail(f"the domain of {raw.strip()!r} is not a domain name, like voorbeeld.nl")
    if not re.fullmatch(r"[a-z]{2,63}", labels[-1]) and not labels[-1].startswith("xn--"):
        raise InvalidEmail(
            f"the domain of {raw.strip()!r} does not end in a top-level domain such as .nl or .com"
        )
    return address
