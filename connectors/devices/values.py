"""Small value grammars shared by the HL7 v2 and ASTM readers: numbers, reference ranges, timestamps.

These are the only hand-written grammars in the device readers; the message structure itself is tokenised by
the ``hl7`` library (HL7) or by the ASTM record splitter.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from connectors.devices.model import ReferenceRange

# HL7 NM (and ASTM numeric results) allow an optional sign, digits and one '.' - no exponent, no comma, no
# NaN/Infinity, all of which Decimal() would otherwise happily accept.
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(rf"\s*({_NUMBER})\s*")

_RANGE_FORMS = (
    # 70-105, 70_105, 3.5 - 5.0, 4.3 to 6.2, -2 - 2; '_' is the HL7 example form, ' to ' what NIST LRI sends.
    re.compile(rf"\s*(?P<low>{_NUMBER})\s*(?:-|_|–|\bto\b|\.\.)\s*(?P<high>{_NUMBER})\s*(?P<rest>.*)", re.I),
    # <5, <=5, >10, >= 10, optionally followed by unit or prose ("<9 mcg/dL: acceptable ...").
    re.compile(rf"\s*(?P<cmp>[<>]=?|≤|≥)\s*(?P<bound>{_NUMBER})(?:\s+(?P<rest>.*)|\s*)$"),
)

_DTM_RE = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<frac>\d{1,4}))?(?P<tz>[+-]\d{4})?"
)


def parse_decimal(text: str) -> Decimal | None:
    """Return the number in ``text`` (surrounding blanks allowed) or None if it is not a plain decimal."""
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        return None
    try:
        return Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the regex only lets through valid literals
        return None


def parse_reference_range(text: str) -> ReferenceRange | None:
    """Parse ``70-105``, ``70_105``, ``3.5 - 5.0``, ``4.3 to 6.2``, ``<5``, ``>=10``.

    Returns a range with only ``text`` set when the text is prose (``High Viral Load > or = 850000``): the text
    is still worth keeping, but no bound is guessed from it. Returns None for an empty text.
    """
    stripped = text.strip()
    if not stripped:
        return None
    between = _RANGE_FORMS[0].fullmatch(stripped)
    if between is not None and _looks_like_unit(between.group("rest")):
        low, high = Decimal(between.group("low")), Decimal(between.group("high"))
        if low <= high:
            return ReferenceRange(text=stripped, low=low, high=high)
    bound = _RANGE_FORMS[1].fullmatch(stripped)
    if bound is not None:
        value = Decimal(bound.group("bound"))
        cmp = bound.group("cmp")
        if cmp in ("<", "<=", "≤"):
            return ReferenceRange(text=stripped, high=value, high_inclusive=cmp != "<")
        return ReferenceRange(text=stripped, low=value, low_inclusive=cmp != ">")
    return ReferenceRange(text=stripped)


def _looks_like_unit(rest: str | None) -> bool:
    # "70-105 mg/dL" is a range with a unit; "1-2 weeks after dosing: 50-100" is prose we must not half-read.
    return not rest or re.fullmatch(r"[A-Za-z%µ/*{}\[\]0-9.^]+", rest) is not None


def parse_timestamp(text: str) -> datetime | None:
    """Parse an HL7 DTM / ASTM timestamp ``YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]``.

    Returns an aware datetime when an offset is given and a naive one otherwise (the sender's local time; the
    loader decides which practice time zone applies). Raises ValueError for anything else, including
    impossible dates, so that the caller can report the exact field.
    """
    value = text.strip()
    if not value:
        return None
    match = _DTM_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"'{text}' is not a timestamp (expected YYYYMMDD[HHMM[SS]][+/-ZZZZ])")
    parts = match.groupdict()
    # A component may only be present if the previous one is: "2020" + "01" + "" + "12" cannot happen with
    # this regex because the groups are consumed in order, so precision is simply the first missing one.
    tz = None
    if parts["tz"]:
        sign = -1 if parts["tz"][0] == "-" else 1
        hours, minutes = int(parts["tz"][1:3]), int(parts["tz"][3:5])
        if hours > 14 or minutes > 59:
            raise ValueError(f"'{text}' has an impossible UTC offset")
        offset = timedelta(hours=hours, minutes=minutes) * sign
        tz = UTC if not offset else timezone(offset)
    frac = parts["frac"] or ""
    try:
        return datetime(
            int(parts["y"]),
            int(parts["mo"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int((frac + "000000")[:6]),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid date/time ({exc})") from None


def parse_date(text: str) -> date | None:
    """Parse an HL7 DT / ASTM date (``YYYYMMDD``, or a timestamp whose date part is taken)."""
    stamp = parse_timestamp(text)
    return stamp.date() if stamp is not None else None
