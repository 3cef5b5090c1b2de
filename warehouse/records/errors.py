"""The error the records rules raise."""

from __future__ import annotations

from warehouse.kernel.errors import DomainError


class RecordsError(DomainError):
    """Input the records rules refuse; ``field`` names the form field the message belongs to."""
