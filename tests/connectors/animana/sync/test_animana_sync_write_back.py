"""Write-back mappings against what the sync really stored: for every record of the first page of each mirrored
resource, the resource's `write_back` of its warehouse row (PII decrypted, the ids it points at looked up in the
same database) gives back the fields Animana sent — except those each resource documents as not round-trippable."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import column, literal_column, select, table, text
from sqlalchemy.orm import Session

from connectors.animana.resources import agenda, animals
from connectors.animana.resources.registry import SPEC_BY_NAME
from connectors.animana.simulator.write_models import CREATE_MODELS, patch_model
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.sync.test_animana_sync_local_edits import _raw_page
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.ciphers import practice_cipher
from warehouse.schema.clients import SPECIES

PII = ("email", "phone", "address", "iban")


@pytest.fixture
def typed_world(animana_world: SyncWorld) -> SyncWorld:
    """`animana_world` whose franchise knows every appointment type Animana's names map to, after one sync."""
    with animana_world.db.system() as session:
        for code in sorted(set(agenda.APPOINTMENT_TYPE_CODES.values())):
            session.execute(
                text(
                    "INSERT INTO appointment_type (franchise_id, code, name, duration_minutes) "
                    "VALUES (:fid, :code, :code, 15) ON CONFLICT DO NOTHING"
                ),
                {"fid": animana_world.practices[0].franchise_id, "code": code},
            )
    with animana_world.client() as client:
        sync_all(animana_world.db.app_engine, client, animana_world.practices, master_key=MASTER_KEY)
    return animana_world


class DatabaseRefs:
    """`WriteRefs` over the synced database: the real lookup a write-back needs, by id."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def animana_id(self, table_name: str, local_id: int | None) -> str | None:
        return None if local_id is None else self.value(table_name, local_id, "animana_id")

    def value(self, table_name: str, local_id: int | None, column_name: str) -> Any:
        if local_id is None:
            return None
        query = select(column(column_name)).select_from(table(table_name)).where(column("id") == local_id)
        return self.session.scalar(query)


def _rows(session: Session, table_name: str, practice_id: int, ids: list[str]) -> dict[str, dict[str, Any]]:
    query = (
        select(literal_column("*"))
        .select_from(table(table_name))
        .where(column("practice_id") == practice_id, column("animana_id").in_(ids))
    )
    return {r["animana_id"]: dict(r) for r in session.execute(query).mappings()}


def _with_what_the_row_lacks(
    session: Session, table_name: str, row: dict[str, Any], practice_id: int
) -> None:
    """What a write-back reads beyond the row's columns: decrypted PII, a patient's owners, an invoice's lines."""
    if table_name == "client":
        cipher = practice_cipher(session, practice_id, MASTER_KEY)
        for name in PII:
            stored = row[f"{name}_enc"]
            row[name] = None if stored is None else cipher.decrypt(name, bytes(stored))
    elif table_name == "patient":
        row["client_ids"] = list(
            session.scalars(
                text("SELECT client_id FROM client_patient WHERE patient_id = :id ORDER BY is_primary DESC"),
                {"id": row["id"]},
            )
        )
    elif table_name == "invoice":
        lines = session.execute(
            text(
                "SELECT * FROM invoice_line WHERE invoice_id = :id "
                "ORDER BY split_part(animana_id, ':', 2)::int"
            ),
            {"id": row["id"]},
        )
        row["lines"] = [dict(line) for line in lines.mappings()]


def _as_animana_keeps_it(resource: str, body: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """The record Animana sent, reduced to what survives the read mapping (the module docstrings say why)."""
    expected = {key: sent[key] for key in body}
    if resource == "relations":
        for key in ("title", "initials", "first_name", "city", "email", "phone"):
            expected[key] = sent[key] or None
    elif resource == "animals":
        if sent["species"] not in SPECIES:
            expected["species"] = "other"
        expected["breed"], expected["colour"] = sent["breed"] or None, sent["colour"] or None
        owners = list(dict.fromkeys(sent["relation_ids"]))  # a repeated owner is stored once
        expected["relation_ids"] = _primary_first(owners)
    elif resource == "agenda":
        code = agenda.APPOINTMENT_TYPE_CODES.get(sent["type"].strip().lower())
        expected["type"] = agenda.ANIMANA_TYPE_BY_CODE.get(code)  # type: ignore[arg-type]
    elif resource == "payments" and sent["relation_id"] is None:
        expected["relation_id"] = body["relation_id"]  # the invoice's client stood in
    elif resource == "invoices":
        expected["lines"] = [{k: v for k, v in line.items() if k != "product_id"} for line in sent["lines"]]
    return expected


def _primary_first(owners: list[int]) -> list[int]:
    """Owners as the warehouse knows them: the primary one first, the others without an order."""
    return [owners[0], *sorted(owners[1:])]


WRITTEN = [name for name, spec in SPEC_BY_NAME.items() if spec.write_back is not None]


def test_the_written_resources_are_the_mirrored_tables():
    assert {(SPEC_BY_NAME[r].table, r) for r in WRITTEN} == {(t, m.resource) for t, m in MIRRORED.items()}
    assert all(spec.table is None for name, spec in SPEC_BY_NAME.items() if name not in WRITTEN)


@pytest.mark.parametrize("resource", WRITTEN)
def test_write_back_of_a_synced_row_gives_back_what_animana_sent(
    typed_world: SyncWorld, resource: str
) -> None:
    spec = SPEC_BY_NAME[resource]
    assert spec.table is not None and spec.write_back is not None
    practice = typed_world.practices[0]
    sent_by_id = {str(r["id"]): r for r in _raw_page(typed_world.sim, int(practice.animana_id), resource)}
    compared = 0
    with typed_world.db.system() as session:
        refs = DatabaseRefs(session)
        rows = _rows(session, spec.table, practice.practice_id, list(sent_by_id))
        assert len(rows) >= len(sent_by_id) * 0.9, resource  # (a few records may be quarantined)
        for animana_id, row in rows.items():
            _with_what_the_row_lacks(session, spec.table, row, practice.practice_id)
            body = spec.write_back(row, refs)
            assert "id" not in body and "updated_at" not in body
            # Animana takes it as an update of the record: no field it refuses, none it does not know.
            patch_model(CREATE_MODELS[resource]).model_validate_json(json.dumps(body))
            sent = sent_by_id[animana_id]
            if resource == "animals" and sent["chip_number"] and row["microchip"] is None:
                continue  # a refused chip (noted in the quarantine), documented as lost
            if resource == "animals":
                body = {**body, "relation_ids": _primary_first(body["relation_ids"])}
            assert body == _as_animana_keeps_it(resource, body, sent), (resource, animana_id)
            compared += 1
    assert compared > 0


def test_gender_and_sex_map_one_to_one():
    assert {animals.GENDER_BY_SEX[sex] for sex in animals.SEX_BY_GENDER.values()} == set(
        animals.SEX_BY_GENDER
    )
