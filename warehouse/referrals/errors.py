"""The error the referral rules raise."""

from __future__ import annotations

from warehouse.kernel.errors import DomainError


class ReferralError(DomainError):
    """A referral request the rules refuse; ``field`` names the form field the message belongs to."""
