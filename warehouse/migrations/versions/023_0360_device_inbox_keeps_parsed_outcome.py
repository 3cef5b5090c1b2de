"""An inbox device message keeps its parsed outcome, so a person resolves it without re-parsing the raw copy.

The device inbox page resolves a message to the patient a person picked. It used to re-parse the stored raw
copy, which made the dashboard import the parsers (``connectors.devices``) against the layering of
architecture §1. ``parsed_outcome`` holds what the parser read (``warehouse.ingest.devices.stored_outcome``)
while the message waits in the inbox; it is cleared when the message is loaded.

``json``, not ``jsonb``: ``json`` keeps the text as given, NUL escapes included, which devices can send.

Messages already in the inbox have none until the inbox retry (every 15 minutes, or ``vetconnect devices
retry``) re-reads them; until then the page says so, and the CLI's ``resolve`` (which parses) works as before.

Revision ID: 0360
Revises: 0350
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0360"
down_revision: str | Sequence[str] | None = "0350"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE device_message ADD COLUMN parsed_outcome json")


def downgrade() -> None:
    op.execute("ALTER TABLE device_message DROP COLUMN parsed_outcome")
