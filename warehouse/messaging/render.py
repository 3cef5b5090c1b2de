"""A message's subject and body from the practice's template: the franchise's default, the practice's override.

Templates are the franchise's reminder templates (``reminder_template``, a shared resource) with the placeholders
``warehouse.tenants.shared_fields`` checks when one is edited (``{client}``, ``{patient}``, ``{when}``…). A kind
of message looks for the template coded ``<code>-<channel>`` (``vacc-sms``), then ``<code>`` (``vacc``), active;
the practice's override replaces its subject or body. No template: the Dutch text below. Every message ends
with the practice's name, phone and booking link, so an owner can always answer it.

Rendering only substitutes plain ``{name}`` fields (``string.Formatter().parse``), never ``str.format``: a
template is user text, and format's attribute and index lookups must not run on it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# The message kinds and the template code each looks for.
TEMPLATE_CODES = {
    "vaccination_reminder": "vacc",
    "overdue_reminder": "vacc-overdue",
    "appointment_confirmation": "appt-confirm",
    "appointment_day_before": "appt-day-before",
    "no_show_follow_up": "no-show",
}
# (subject, body) when the franchise has no template for the kind.
DEFAULT_TEXTS = {
    "vaccination_reminder": (
        "Tijd voor de vaccinatie van {patient}",
        "Beste {client}, de vaccinatie {vaccine} van {patient} is {due_date} weer nodig. Maak een afspraak.",
    ),
    "overdue_reminder": (
        "De vaccinatie van {patient} is verlopen",
        "Beste {client}, de vaccinatie {vaccine} van {patient} was {due_date} nodig en is nog niet gegeven. "
        "Maak snel een afspraak, dan blijft {patient} beschermd.",
    ),
    "appointment_confirmation": (
        "Bevestiging van uw afspraak voor {patient}",
        "Beste {client}, uw afspraak voor {patient} staat op {when}.",
    ),
    "appointment_day_before": (
        "Morgen: afspraak voor {patient}",
        "Beste {client}, tot morgen: de afspraak voor {patient} is {when}. Verhinderd? Laat het ons weten.",
    ),
    "no_show_follow_up": (
        "We hebben {patient} gemist",
        "Beste {client}, we hebben {patient} {when} gemist. Maak gerust een nieuwe afspraak.",
    ),
}

_TEMPLATE = text(
    """
SELECT coalesce(o.subject, t.subject) AS subject, coalesce(o.body, t.body) AS body
FROM tenant p
JOIN reminder_template t ON t.franchise_id = p.franchise_id AND t.active
LEFT JOIN reminder_template_override o
  ON o.practice_id = p.id AND o.franchise_id = t.franchise_id AND o.template_id = t.id
WHERE p.id = :p AND t.code IN (:specific, :general)
ORDER BY t.code = :specific DESC, t.id
LIMIT 1
"""
)


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True)
class Practice:
    name: str
    phone: str | None
    booking_url: str | None


def practice_template(session: Session, practice_id: int, kind: str, channel: str) -> Template:
    """The template a message of ``kind`` by ``channel`` is written from at this practice."""
    code = TEMPLATE_CODES[kind]
    row = session.execute(
        _TEMPLATE, {"p": practice_id, "specific": f"{code}-{channel}", "general": code}
    ).first()
    if row is None:
        return Template(*DEFAULT_TEXTS[kind])
    return Template(row.subject, row.body)


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``{name}`` replaced by its value (``{{``/``}}`` are braces; an unknown name is
    left as written, so a template edited outside the checks shows its mistake instead of failing a send)."""
    out: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, f"{{{name}}}"))
    return "".join(out)


def signature(practice: Practice, channel: str) -> str:
    """How the owner reaches the practice: its name, phone and booking link."""
    parts = [practice.name]
    if practice.phone:
        parts.append(f"tel. {practice.phone}")
    if practice.booking_url:
        parts.append(f"afspraak maken: {practice.booking_url}")
    return (" – " if channel == "sms" else "\n\n") + ", ".join(parts)


def render(
    template: Template, values: Mapping[str, str], practice: Practice, channel: str
) -> tuple[str, str]:
    """(subject, body) of one message."""
    filled = {
        **values,
        "practice": practice.name,
        "phone": practice.phone or "",
        "booking_link": practice.booking_url or "",
    }
    body = fill(template.body, filled).strip() + signature(practice, channel)
    return fill(template.subject, filled).strip(), body
