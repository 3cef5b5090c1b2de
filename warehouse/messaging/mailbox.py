"""The demo's mailbox: what the local SMTP server (``vetconnect messages smtp-server``) kept as ``.eml`` files and
what the SMS gateway simulator accepted (its ``GET /_sim/messages``), as a demo user reads them. Read-only; only
the demo shows it (a real gateway has no such listing)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Mail:
    name: str  # the file's name: the message id
    to: str
    subject: str
    sent: dt.datetime | None  # the Date header (aware)
    body: str


def _mail(path: Path) -> Mail:
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    try:
        sent = parsedate_to_datetime(str(parsed["Date"])) if parsed["Date"] else None
    except (TypeError, ValueError):
        sent = None
    content = parsed.get_body(preferencelist=("plain",))  # as kept: lines end in CRLF, as SMTP sends them
    return Mail(path.stem, str(parsed["To"] or ""), str(parsed["Subject"] or ""), sent,
                content.get_content().replace("\r\n", "\n").strip() if content is not None else "")  # fmt: skip


def mails(directory: Path, *, limit: int = 200) -> list[Mail]:
    """The newest ``limit`` mails kept in ``directory``, newest first (none when it does not exist yet)."""
    if not directory.is_dir():
        return []
    newest = sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    return [_mail(path) for path in newest]


@dataclass(frozen=True)
class Sms:
    id: str
    to: str
    body: str
    status: str  # accepted | delivered | failed
    error: str | None
    accepted: dt.datetime | None


def sms_messages(gateway_url: str, *, timeout: float = 2.0) -> list[Sms]:
    """The messages the SMS simulator accepted, newest first; raises ``httpx.HTTPError`` when it cannot say."""
    response = httpx.get(f"{gateway_url.rstrip('/')}/_sim/messages", timeout=timeout)
    response.raise_for_status()
    found = [
        Sms(
            m["id"],
            m["to"],
            m["body"],
            m["status"],
            m.get("error"),
            dt.datetime.fromisoformat(m["accepted_at"]) if m.get("accepted_at") else None,
        )  # fmt: skip
        for m in response.json()["messages"]
    ]
    return sorted(found, key=lambda s: s.accepted or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
