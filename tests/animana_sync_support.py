"""Helpers for the Animana sync tests, also used by the marts and models tests (their worlds are synced)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from connectors.animana import AnimanaClient, RetryPolicy, load_settings
from connectors.animana.resources.registry import RESOURCE_ORDER
from connectors.animana.simulator import RunningSimulator
from connectors.animana.sync.links import LinkedPractice, linked_practices
from connectors.animana.sync.service import drift
from warehouse.tenants.admin import add_franchise, add_practice

MASTER_KEY = bytes(range(32))
SECRET = "s3cr3t-Animana-Sync-Test"
FAST = RetryPolicy(
    attempts=12, timeout=60, wait_initial=0.01, wait_max=0.2, wait_jitter=0.02, max_retry_after=2
)

# Everything the mirror holds, compared between runs (ids excluded: they are warehouse-assigned).
SNAPSHOT_QUERIES = {
    "client": "SELECT animana_id, title, initials, first_name, last_name, postcode, city, email_enc IS NOT NULL, "
    "phone_enc IS NOT NULL, address_enc IS NOT NULL, iban_enc IS NOT NULL, "
    "active, deleted_at IS NOT NULL FROM client WHERE animana_id IS NOT NULL",
    "patient": "SELECT animana_id, name, species, breed, sex, date_of_birth, colour, microchip, deceased, "
    "deceased_on, deleted_at IS NOT NULL FROM patient",
    "client_patient": "SELECT c.animana_id, p.animana_id, cp.is_primary FROM client_patient cp "
    "JOIN client c ON c.practice_id = cp.practice_id AND c.id = cp.client_id "
    "JOIN patient p ON p.practice_id = cp.practice_id AND p.id = cp.patient_id",
    "resource": "SELECT animana_id, kind, name, active FROM resource WHERE animana_id IS NOT NULL",
    "product_price_override": "SELECT p.code, o.price_cents, o.active FROM product_price_override o "
    "JOIN product p ON p.franchise_id = o.franchise_id AND p.id = o.product_id",
    "appointment": "SELECT a.animana_id, r.animana_id, p.animana_id, c.animana_id, a.starts_at, a.ends_at, "
    "a.status, a.reason, a.cancel_reason FROM appointment a "
    "JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id "
    "LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id "
    "LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id",
    "visit": "SELECT v.animana_id, p.animana_id, v.started_at, v.subjective, v.plan FROM visit v "
    "JOIN patient p ON p.practice_id = v.practice_id AND p.id = v.patient_id",
    "diagnosis": "SELECT animana_id, venom_code, term FROM diagnosis",
    "weight_measurement": "SELECT animana_id, weight_grams FROM weight_measurement",
    "vaccination": "SELECT animana_id, vaccine_name, given_on, due_on FROM vaccination",
    "prescription": "SELECT animana_id, product_name, quantity, product_id IS NOT NULL FROM prescription",
    "lab_observation": "SELECT animana_id, code, value_numeric, abnormal_flag FROM lab_observation",
    "invoice": "SELECT animana_id, number, total_excl_cents, vat_cents, total_incl_cents FROM invoice",
    "invoice_line": "SELECT animana_id, quantity, unit_price_cents, vat_rate_bp, line_incl_cents FROM invoice_line",
    "payment": "SELECT animana_id, method, amount_cents, invoice_id IS NOT NULL FROM payment",
    "ingest_quarantine": "SELECT resource, external_id, reason, resolved_at IS NOT NULL FROM ingest_quarantine",
}


@dataclass
class SyncWorld:
    db: Any
    sim: RunningSimulator
    practices: list[LinkedPractice]

    def client(self, retry: RetryPolicy = FAST, **settings: Any) -> AnimanaClient:
        return make_client(self.sim, retry, **settings)

    def snapshot(self) -> dict[str, list[tuple]]:
        with self.db.system("test: snapshot") as session:
            return {
                name: sorted(tuple(map(str, row)) for row in session.execute(text(query)).all())
                for name, query in SNAPSHOT_QUERIES.items()
            }

    def assert_counts_match(self) -> None:
        with self.client() as client:
            for practice in self.practices:
                result = drift(self.db.app_engine, client, practice)
                assert result.differences == {}, (practice.code, result)


def make_client(sim: RunningSimulator, retry: RetryPolicy = FAST, **settings: Any) -> AnimanaClient:
    config = load_settings(
        url=sim.base_url, client_id=sim.client_id, client_secret=sim.client_secret, **settings
    )
    return AnimanaClient(config, retry=retry)


def link_world(db: Any, animana_ids: list[int]) -> list[LinkedPractice]:
    """One franchise with a practice per Animana practice id, linked."""
    with db.system() as session:
        franchise = add_franchise(session, code="fr-sync", name="Sync Franchise")
        for aid in animana_ids:
            add_practice(
                session, franchise_id=franchise.id, code=f"sync-{aid}", name=f"Sync {aid}",
                master_key=MASTER_KEY, animana_practice_id=str(aid),
            )  # fmt: skip
    return linked_practices(db.admin_engine)


def total_rows(snapshot: dict[str, list[tuple]]) -> int:
    return sum(len(v) for v in snapshot.values())


__all__ = ["MASTER_KEY", "RESOURCE_ORDER", "SyncWorld", "link_world", "make_client", "total_rows"]
