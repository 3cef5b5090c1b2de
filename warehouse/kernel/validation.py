"""Validation of identifiers staff type in, with messages that say what is wrong."""

from __future__ import annotations

import re


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
