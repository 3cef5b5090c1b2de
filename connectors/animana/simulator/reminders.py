"""The reminders a practice keeps in Animana itself (*herinneringen*): what is due for a patient, when, how the
client hears of it, and whether it went out.

The story: every vaccination sets a reminder for its booster; a senior check, a heart murmur or dental work
sets a check-up reminder; a wormer or flea treatment, or clipped nails, often sets a free-text one. The
practice's nightly run sends a reminder a few weeks before it is due (the lead is the practice's setting), by
the client's preferred channel. A reminder whose reason went away first — the booster or check-up was done
early, the same treatment given again, the patient died — is cancelled then; one not due for sending yet is
open. A reminder belongs to the patient; the addressee is usually set, and when it is not (null) Animana writes
to the patient's first owner.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .clock import AMSTERDAM, moment, ts

Record = dict[str, Any]

SEND_AT = dt.time(7, 0)  # the nightly reminder run has finished by then
LEAD_DAYS = (14, 21, 28)  # the practice's setting: how long before the due date a reminder goes out
NO_ADDRESSEE = 0.08  # share of reminders entered on the patient without choosing the client
# Consult reasons that set a check-up reminder: (days until due, text).
CHECK_UPS: dict[str, tuple[int, str]] = {
    "senior check": (365, "Jaarlijkse seniorencheck"),
    "hartgeruis": (182, "Hartcontrole"),
    "gebitsbehandeling": (182, "Gebitscontrole"),
}
# Treatments after which the practice often sets a free-text reminder: (chance, days until due, text).
REPEAT_PRODUCTS: dict[str, tuple[float, int, str]] = {
    "M006": (0.6, 91, "Ontworming herhalen"),
    "M007": (0.6, 84, "Vlooien- en tekenbehandeling herhalen"),
    "M010": (0.3, 28, "Vlooienbehandeling herhalen"),
}
REPEAT_REASONS: dict[str, tuple[float, int, str]] = {"nagels knippen": (0.3, 60, "Nagels knippen")}


@dataclass(frozen=True)
class _Origin:
    """What set a reminder, and the record of the same thing that makes it superfluous when it comes first."""

    animal_id: int
    relation_id: int
    kind: str
    vaccination_id: int | None
    description: str
    due_on: dt.date
    created: dt.datetime
    repeat_key: tuple[int, str, str]  # (animal, "vaccine"/"reason"/"product", code): a later one renews it
    day: dt.date


def generate_reminders(
    rng: random.Random,
    *,
    relations: list[Record],
    animals: list[Record],
    consults: list[Record],
    vaccinations: list[Record],
    prescriptions: list[Record],
    anchor: dt.datetime,
) -> list[Record]:
    """Reminder records (without ``id``/``deleted``, which the generator adds) in the order they were set."""
    lead = dt.timedelta(days=rng.choice(LEAD_DAYS))
    channels = {r["id"]: _channel(rng, r) for r in relations}
    first_owner = {a["id"]: a["relation_ids"][0] for a in animals}
    died = {
        a["id"]: dt.datetime.combine(dt.date.fromisoformat(a["deceased_on"]), dt.time(17, 30), AMSTERDAM)
        for a in animals
        if a["deceased_on"]
    }
    origins = list(_origins(rng, consults, vaccinations, prescriptions))
    renewals = _renewals(consults, vaccinations, prescriptions)
    out = []
    for origin in sorted(origins, key=lambda o: o.created):
        send = _send_moment(origin, lead)
        renewed = _next_after(renewals.get(origin.repeat_key, []), origin.day)
        ends = [when for when in (renewed, died.get(origin.animal_id)) if when is not None and when < send]
        status, updated, sent_at = "open", origin.created, None
        if ends:
            status, updated = "cancelled", max(origin.created, min(ends))
        elif send <= anchor:
            status, updated, sent_at = "sent", send, send
        addressee = None if rng.random() < NO_ADDRESSEE else origin.relation_id
        out.append(
            {
                "updated_at": ts(updated),
                "created_at": ts(origin.created),
                "animal_id": origin.animal_id,
                "relation_id": addressee,
                "kind": origin.kind,
                "vaccination_id": origin.vaccination_id,
                "description": origin.description,
                "due_on": origin.due_on.isoformat(),
                "channel": channels[addressee or first_owner[origin.animal_id]],
                "status": status,
                "sent_at": None if sent_at is None else ts(sent_at),
            }
        )
    return out


def _send_moment(origin: _Origin, lead: dt.timedelta) -> dt.datetime:
    """The nightly run that sends it: ``lead`` before the due date, or the first run after it was set."""
    send = dt.datetime.combine(origin.due_on - lead, SEND_AT, AMSTERDAM)
    if send < origin.created:
        send = dt.datetime.combine(origin.created.astimezone(AMSTERDAM).date(), SEND_AT, AMSTERDAM)
        send += dt.timedelta(days=1)
    return send


def _channel(rng: random.Random, relation: Record) -> str:
    """The client's preferred channel: e-mail when known (mostly), a text to a mobile number, else a letter."""
    if relation["email"] and rng.random() < 0.85:
        return "email"
    return "sms" if relation["phone"].startswith("06") else "letter"


def _origins(
    rng: random.Random, consults: list[Record], vaccinations: list[Record], prescriptions: list[Record]
) -> Iterable[_Origin]:
    consult_by_id = {c["id"]: c for c in consults}
    for v in vaccinations:
        yield _Origin(
            animal_id=v["animal_id"],
            relation_id=consult_by_id[v["consult_id"]]["relation_id"],
            kind="vaccination",
            vaccination_id=v["id"],
            description=v["vaccine"],
            due_on=dt.date.fromisoformat(v["due_on"]),
            created=moment(v["updated_at"]),
            repeat_key=(v["animal_id"], "vaccine", v["vaccine_code"]),
            day=dt.date.fromisoformat(v["given_on"]),
        )
    for c in consults:
        if c["reason"] in CHECK_UPS:
            days, text = CHECK_UPS[c["reason"]]
            yield _from_consult(c, "check-up", text, days)
        if c["reason"] in REPEAT_REASONS:
            chance, days, text = REPEAT_REASONS[c["reason"]]
            if rng.random() < chance:
                yield _from_consult(c, "other", text, days)
    for p in prescriptions:
        if p["product_code"] not in REPEAT_PRODUCTS:
            continue
        chance, days, text = REPEAT_PRODUCTS[p["product_code"]]
        if rng.random() < chance:
            day = dt.date.fromisoformat(p["date"])
            yield _Origin(
                animal_id=p["animal_id"],
                relation_id=consult_by_id[p["consult_id"]]["relation_id"],
                kind="other",
                vaccination_id=None,
                description=text,
                due_on=day + dt.timedelta(days=days),
                created=moment(p["updated_at"]),
                repeat_key=(p["animal_id"], "product", p["product_code"]),
                day=day,
            )


def _from_consult(consult: Record, kind: str, text: str, days: int) -> _Origin:
    day = dt.datetime.fromisoformat(consult["date"]).date()
    return _Origin(
        animal_id=consult["animal_id"],
        relation_id=consult["relation_id"],
        kind=kind,
        vaccination_id=None,
        description=text,
        due_on=day + dt.timedelta(days=days),
        created=moment(consult["updated_at"]),
        repeat_key=(consult["animal_id"], "reason", consult["reason"]),
        day=day,
    )


def _renewals(
    consults: list[Record], vaccinations: list[Record], prescriptions: list[Record]
) -> dict[tuple[int, str, str], list[tuple[dt.date, dt.datetime]]]:
    """Per repeat key: the days it was done again, with when that was recorded, in day order."""
    done: dict[tuple[int, str, str], list[tuple[dt.date, dt.datetime]]] = {}
    for v in vaccinations:
        key = (v["animal_id"], "vaccine", v["vaccine_code"])
        done.setdefault(key, []).append((dt.date.fromisoformat(v["given_on"]), moment(v["updated_at"])))
    for c in consults:
        if c["reason"] not in CHECK_UPS and c["reason"] not in REPEAT_REASONS:
            continue  # sets no reminder, so renews none
        key = (c["animal_id"], "reason", c["reason"])
        done.setdefault(key, []).append(
            (dt.datetime.fromisoformat(c["date"]).date(), moment(c["updated_at"]))
        )
    for p in prescriptions:
        if p["product_code"] not in REPEAT_PRODUCTS:
            continue
        key = (p["animal_id"], "product", p["product_code"])
        done.setdefault(key, []).append((dt.date.fromisoformat(p["date"]), moment(p["updated_at"])))
    for events in done.values():
        events.sort()
    return done


def _next_after(events: list[tuple[dt.date, dt.datetime]], day: dt.date) -> dt.datetime | None:
    """When the first repeat after ``day`` was recorded, if there was one."""
    index = bisect.bisect_right(events, (day, dt.datetime.max.replace(tzinfo=dt.UTC)))
    return events[index][1] if index < len(events) else None
