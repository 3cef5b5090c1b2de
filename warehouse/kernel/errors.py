"""The one base of the errors a domain service raises when its rules refuse a request.

A page catches a domain's own error (``RecordsError``, ``BillingError`` …) and shows the message at the form
field it names, so every such error carries ``field``. Catching ``DomainError`` catches them all; the
domains' errors are siblings, so catching one domain's error never catches another's by accident.
"""

from __future__ import annotations


class DomainError(ValueError):
    """Input or a state a domain's rules refuse; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
