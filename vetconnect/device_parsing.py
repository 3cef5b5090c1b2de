"""Shell-level bridge for pages: the device parser and the master key, so that ``dashboard`` re-processes
inbox messages without importing ``connectors`` itself (architecture §1: dashboard imports warehouse only)."""

from __future__ import annotations

from vetconnect.settings import MissingSetting, get_settings
from warehouse.ingest.devices.inputs import RawParser

__all__ = ["device_master_key", "device_parser"]


def device_parser() -> RawParser:
    """The parser ``warehouse.ingest.devices.inbox.resolve_inbox`` / ``reprocess_inbox`` re-read stored raw copies with."""
    from connectors.devices.ingest import parse_raw

    return parse_raw


def device_master_key() -> bytes | None:
    """The master key, or None when none is configured (DICOM files then stay in the inbox, lab results load)."""
    try:
        return get_settings().require_master_key()
    except MissingSetting:
        return None
