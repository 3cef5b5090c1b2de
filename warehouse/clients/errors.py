"""The errors the client rules raise."""

from __future__ import annotations

from collections.abc import Mapping

from warehouse.kernel.errors import DomainError


class ClientsError(DomainError):
    """Input the client rules refuse; ``field`` names the form field the message belongs to."""


class InvalidClientDetails(ClientsError):
    """Several fields of one form are wrong at once: ``errors`` holds the message per field, so the form shows
    every one at its field in one go (``field`` and the message are the first of them)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        field, message = next(iter(self.errors.items()))
        super().__init__(field, message)
