"""Bespoke handlers for the practice's directory: bookable resources (staff and rooms), the price list, clients
(with their PII encrypted) and patients with their owners.

Why not a `plan.TableLoad`: products land in two tables at two tenant levels (the franchise's list, the
practice's override) keyed by code, not by an Animana id; clients are encrypted against what is stored; patients
carry their owner links (a child table replaced per page) and may claim a chip another patient keeps
(`chips`); resources share one table between two source resources whose tombstone keeps rows still booked.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql
from sqlalchemy.orm import Session

from warehouse.ingest.animana.chips import keep_chips_unique
from warehouse.ingest.animana.rows import ClientRow, LoadTarget
from warehouse.ingest.animana.staging import Staging, stage
from warehouse.ingest.animana.statements import (
    driver_connection,
    existing,
    params,
    ref,
    run_upsert,
    upsert,
    version,
    write,
    write_batch,
)
from warehouse.kernel.crypto import DecryptionError, FieldCipher

STG_RESOURCE = Staging("stg_resource", ("animana_id text", "kind text", "name text", "active boolean"))
STG_PRODUCT = Staging(
    "stg_product",
    (
        "code text", "name text", "kind text", "price_cents bigint", "vat_rate_bp bigint",
        "dispensing_category text", "active boolean", "species text[]",
    ),
)  # fmt: skip
# Client rows as staged: PII encrypted (`encrypt_clients`), with the blind indexes beside it.
STG_CLIENT = Staging(
    "stg_client",
    (
        "animana_id text", "title text", "initials text", "first_name text", "last_name text",
        "postcode text", "city text", "email_enc bytea", "phone_enc bytea", "address_enc bytea",
        "iban_enc bytea", "email_bidx bytea", "phone_bidx bytea", "active boolean", "updated_at timestamptz",
    ),
)  # fmt: skip
STG_PATIENT = Staging(
    "stg_patient",
    (
        "animana_id text", "name text", "species text", "breed text", "sex text", "date_of_birth date",
        "colour text", "microchip text", "deceased boolean", "deceased_on date", "updated_at timestamptz",
    ),
)  # fmt: skip
STG_OWNER = Staging("stg_owner", ("patient_animana_id text", "client_animana_id text", "is_primary boolean"))


def load_resources(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_RESOURCE, rows)
    return (
        *run_upsert(
            cur,
            upsert(
                "resource",
                ["kind", "name", "active"],
                "SELECT %(pid)s, s.animana_id, s.kind, s.name, s.active FROM stg_resource s",
            ),
            params(target),
        ),
        0,
    )


def load_products(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    """Animana keeps a price list per practice; ours is per franchise with practice overrides. A code the
    franchise lacks is added to the franchise list (with its kind and target species); the practice's price and
    state land in its override.

    A code the franchise already has keeps its row, with one exception: what earlier syncs could not carry is
    filled in — target species where none is recorded, and kind ``lab`` for what was loaded as a ``service``
    before the API said lab. Only ever filled, never changed back, so practices whose price lists disagree do
    not flip the franchise's row between them; rows already complete are not touched (nor locked)."""
    stage(cur, STG_PRODUCT, rows)
    # In code order: practices of one franchise load at once and meet each other's new codes in the unique
    # index; taken in one order, one waits for the other instead of both waiting (a deadlock, seen with three
    # worker processes).
    cur.execute(
        "INSERT INTO product (franchise_id, code, name, kind, price_cents, vat_rate_bp, dispensing_category, "
        "species) SELECT %(fid)s, s.code, s.name, s.kind, s.price_cents, s.vat_rate_bp, s.dispensing_category, "
        "s.species FROM stg_product s ORDER BY s.code ON CONFLICT (franchise_id, code) DO NOTHING",
        params(target),
    )
    # The rows to complete are locked in code order first (the UPDATE's join order is the planner's): practices
    # of one franchise completing the same rows at once then queue instead of deadlocking, and the one that waited
    # finds the row complete and leaves it.
    cur.execute(
        "WITH todo AS (SELECT p.id, s.kind, s.species FROM product p JOIN stg_product s ON p.code = s.code "
        "WHERE p.franchise_id = %(fid)s AND ((p.species IS NULL AND s.species IS NOT NULL) "
        "OR (p.kind = 'service' AND s.kind = 'lab')) ORDER BY p.code FOR UPDATE OF p) "
        "UPDATE product p SET species = coalesce(p.species, t.species), "
        "kind = CASE WHEN p.kind = 'service' AND t.kind = 'lab' THEN 'lab' ELSE p.kind END "
        "FROM todo t WHERE p.franchise_id = %(fid)s AND p.id = t.id",
        params(target),
    )
    cur.execute(
        "WITH up AS (INSERT INTO product_price_override AS t (practice_id, product_id, franchise_id, "
        "price_cents, active) SELECT %(pid)s, p.id, %(fid)s, s.price_cents, s.active FROM stg_product s "
        "JOIN product p ON p.franchise_id = %(fid)s AND p.code = s.code "
        "ON CONFLICT (practice_id, product_id) DO UPDATE SET price_cents = EXCLUDED.price_cents, "
        "active = EXCLUDED.active, updated_at = now() "
        "WHERE (t.price_cents, t.active) IS DISTINCT FROM (EXCLUDED.price_cents, EXCLUDED.active) "
        "RETURNING (old.practice_id IS NULL) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up",
        params(target),
    )
    inserted, updated = cur.fetchone()  # type: ignore[misc]
    return int(inserted), int(updated), 0


def reconcile_products(session: Session, target: LoadTarget, live_codes: Sequence[str]) -> int:
    """After a complete products stream: drop the practice's overrides for codes the source no longer has."""
    cur = driver_connection(session).cursor()
    cur.execute(
        "DELETE FROM product_price_override o USING product p WHERE o.practice_id = %(pid)s "
        "AND p.franchise_id = o.franchise_id AND p.id = o.product_id AND NOT (p.code = ANY(%(codes)s))",
        params(target, codes=list(live_codes)),
    )
    return cur.rowcount


def encrypt_clients(
    cur: psycopg.Cursor, target: LoadTarget, cipher: FieldCipher, rows: list[tuple]
) -> list[tuple]:
    """`ClientRow`s → `STG_CLIENT` rows: PII encrypted with the practice's cipher, keeping the stored ciphertext
    of a value that did not change (AES-GCM is randomised), so an unchanged client is not an update."""
    cur.execute(
        "SELECT animana_id, email_enc, phone_enc, address_enc, iban_enc FROM client "
        "WHERE practice_id = %(pid)s AND animana_id = ANY(%(ids)s)",
        params(target, ids=[r[0] for r in rows]),
    )
    stored_by_id = {r[0]: r[1:] for r in cur.fetchall()}
    out = []
    for row in rows:
        client = ClientRow(*row)
        clear = (client.email, client.phone, client.address, client.iban)
        stored = stored_by_id.get(client.animana_id, (None, None, None, None))
        encrypted = []
        for column, value, old in zip(("email", "phone", "address", "iban"), clear, stored, strict=True):
            if value in (None, ""):
                encrypted.append(None)
                continue
            if old is not None:
                try:
                    if cipher.decrypt(column, old) == value:
                        encrypted.append(bytes(old))
                        continue
                except DecryptionError:
                    pass
            encrypted.append(cipher.encrypt(column, value))
        out.append(
            (
                client.animana_id, client.title, client.initials, client.first_name, client.last_name,
                client.postcode, client.city, *encrypted, cipher.email_index(client.email),
                cipher.phone_index(client.phone), client.active, client.updated_at,
            )
        )  # fmt: skip
    return out


def load_clients(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_CLIENT, rows)  # rows are already encrypted (see encrypt_clients)
    # An erased client (``warehouse.privacy.erasure``) is never loaded again: Animana's relation may still hold the
    # personal data (in native mode nothing overwrote it, or someone typed it in again there).
    cur.execute(
        "DELETE FROM stg_client s USING client c JOIN client_erasure e ON e.practice_id = c.practice_id "
        "AND e.client_id = c.id WHERE c.practice_id = %(pid)s AND c.animana_id = s.animana_id",
        params(target),
    )
    columns = [
        "title", "initials", "first_name", "last_name", "postcode", "city", "email_enc", "phone_enc",
        "address_enc", "iban_enc", "email_bidx", "phone_bidx", "active", "deleted_at", "animana_version",
    ]  # fmt: skip
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, s.title, s.initials, s.first_name, s.last_name, s.postcode, s.city, "
        "s.email_enc, s.phone_enc, s.address_enc, s.iban_enc, s.email_bidx, s.phone_bidx, s.active, "
        "NULL::timestamptz, {} FROM stg_client s"
    ).format(version("s.updated_at"))
    return (*write_batch(cur, "client", columns, select, target, STG_CLIENT.name, touch=True), 0)


def load_patients(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_PATIENT, rows)
    keep_chips_unique(cur, target, resource, STG_PATIENT)  # a chip another patient keeps is left out, noted
    known = existing(cur, "patient", target, STG_PATIENT.name)
    columns = [
        "name", "species", "breed", "sex", "date_of_birth", "colour", "microchip", "deceased",
        "deceased_on", "deleted_at", "animana_version",
    ]  # fmt: skip
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, s.name, s.species, s.breed, s.sex, s.date_of_birth, s.colour, "
        "s.microchip, s.deceased, s.deceased_on, NULL::timestamptz, {} FROM stg_patient s"
    ).format(version("s.updated_at"))
    counts = write(cur, "patient", columns, select, params(target), new=not known, touch=True)
    # Ownership: the page's patients get exactly the owners the source lists (unknown owners are skipped;
    # the patient still loads).
    stage(cur, STG_OWNER, children.get("owners", []))
    if known:
        keep = [f"{o[0]}/{o[1]}" for o in children.get("owners", [])]
        cur.execute(
            "DELETE FROM client_patient cp USING patient p, client c WHERE cp.practice_id = %(pid)s "
            "AND p.practice_id = %(pid)s AND c.practice_id = %(pid)s AND p.animana_id = ANY(%(parents)s) "
            "AND cp.patient_id = p.id AND c.id = cp.client_id "
            "AND NOT ((p.animana_id || '/' || c.animana_id) = ANY(%(keep)s))",
            params(target, parents=known, keep=keep),
        )
    cur.execute(
        sql.SQL(
            "INSERT INTO client_patient AS t (practice_id, client_id, patient_id, is_primary) "
            "SELECT %(pid)s, c.id, p.id, bool_or(o.is_primary) FROM stg_owner o {patient} {client} "
            "GROUP BY c.id, p.id "
            "ON CONFLICT (practice_id, client_id, patient_id) DO UPDATE SET is_primary = EXCLUDED.is_primary "
            "WHERE t.is_primary IS DISTINCT FROM EXCLUDED.is_primary"
        ).format(
            patient=ref("patient", "o.patient_animana_id", "p", required=True),
            client=ref("client", "o.client_animana_id", "c", required=True),
        ),
        params(target),
    )
    return (*counts, 0)
