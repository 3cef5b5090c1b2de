"""Valid write bodies for every writable resource, built from a practice's own records (the simulator checks
references), and a small wrapper for raw HTTP writes (headers the client would not send)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from connectors.animana import AnimanaClient
from connectors.animana.simulator import RunningSimulator

STAMP = "%Y-%m-%dT%H:%M:%SZ"  # how the API writes a UTC moment back
WRITABLE = (
    "relations",
    "animals",
    "agenda",
    "consults",
    "vaccinations",
    "prescriptions",
    "invoices",
    "payments",
)


def wire(client: AnimanaClient, practice: int, resource: str) -> list[dict[str, Any]]:
    """The live records of a resource as the listing sends them (JSON values, not models)."""
    return [i.model_dump(mode="json") for i in client.iter_records(practice, resource) if not i.deleted]


def write_bodies(client: AnimanaClient, practice: int, slot: int = 0) -> dict[str, dict[str, Any]]:
    """A create body per writable resource. `slot` moves the appointment to another early morning (before
    opening hours: no generated appointment is there), so several can be booked without a double booking."""
    animal = next(a for a in wire(client, practice, "animals") if not a["deceased"])
    vet = next(s for s in wire(client, practice, "staff") if s["role"] == "vet" and s["active"])
    consult = wire(client, practice, "consults")[0]
    vaccination = wire(client, practice, "vaccinations")[0]
    invoice = wire(client, practice, "invoices")[0]
    medicine = next(p for p in wire(client, practice, "products") if p["dispensing_category"] == "UDA")
    start = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC) + dt.timedelta(days=slot)
    return {
        "relations": {
            "last_name": "de Vries",
            "postcode": "3581 AB",
            "city": "Utrecht",
            "phone": "06-12345678",
        },
        "animals": {
            "relation_ids": animal["relation_ids"],
            "name": "Bobbie",
            "species": "dog",
            "gender": "female",
            "date_of_birth": "2022-04-01",
        },
        "agenda": {
            "type": "consult",
            "start": start.strftime(STAMP),
            "end": (start + dt.timedelta(minutes=15)).strftime(STAMP),
            "resource_type": "staff",
            "resource_id": vet["id"],
            "animal_id": animal["id"],
            "relation_id": animal["relation_ids"][0],
            "reason": "jeuk",
        },
        "consults": {
            "animal_id": animal["id"],
            "vet_id": vet["id"],
            "date": "2026-11-02T10:00:00+01:00",
            "reason": "jeuk",
            "soap": {"subjective": "krabt al een week", "plan": "zalf, controle over 2 weken"},
            "diagnoses": [{"description": "otitis externa", "venom_code": "123"}],
            "weight_kg": 12.5,
        },
        "vaccinations": {
            "animal_id": animal["id"],
            "consult_id": consult["id"],
            "vaccine": vaccination["vaccine"],
            "given_on": "2026-11-02",
            "due_on": "2027-11-02",
        },
        "prescriptions": {
            "animal_id": animal["id"],
            "vet_id": vet["id"],
            "date": "2026-11-02",
            "product_code": medicine["code"],
            "quantity": 2,
            "instructions": "1x daags",
        },
        "invoices": {
            "relation_id": animal["relation_ids"][0],
            "date": "2026-11-02",
            "lines": [
                {"product_code": medicine["code"], "quantity": 2, "unit_price_cents": 1250, "vat_rate": 9},
            ],
        },
        "payments": {
            "invoice_id": invoice["id"],
            "method": "pin",
            "amount_cents": 1500,
            "date": "2026-11-02",
        },
    }


class RawWrites:
    """Writes over plain httpx, with whatever headers a test needs (a bare If-Match, a reused key)."""

    def __init__(self, sim: RunningSimulator) -> None:
        token = httpx.post(
            f"{sim.base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
            },
        ).json()["access_token"]
        self.base = sim.base_url
        self.auth = {"Authorization": f"Bearer {token}"}

    def send(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None, **headers: str
    ) -> httpx.Response:
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return httpx.request(
            method,
            f"{self.base}/v1/practices/{path}",
            json=body,
            params=params,
            headers={**self.auth, **named},
        )
