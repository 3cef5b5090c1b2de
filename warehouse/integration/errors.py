"""Errors of the Animana integration domain."""

from __future__ import annotations

from warehouse.kernel.errors import DomainError


class IntegrationError(DomainError):
    """A refused integration action (a mode switch without confirmation, an unknown conflict…)."""
