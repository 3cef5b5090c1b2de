"""Field encryption, blind indexes, write auditing, shared-resource versioning, the bypass log, offboarding."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from sqlalchemy import select, text

from tests.conftest import MASTER_KEY, _libpq, as_role
from tests.factories import cipher_for
from warehouse.kernel.crypto import DecryptionError, normalise_phone, unwrap_data_key
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.clients import Client
from warehouse.schema.tenancy import TenantDataKey


def test_client_pii_is_stored_only_as_ciphertext_and_found_by_blind_index(world_db):
    a1 = world_db.world.practices["a1"]
    with psycopg.connect(_libpq(world_db.admin_url)) as conn:
        email_enc, email_bidx = conn.execute(
            "SELECT email_enc, email_bidx FROM client WHERE practice_id = %s", (a1.practice_id,)
        ).fetchone()
    assert b"example.nl" not in bytes(email_enc)
    with world_db.as_app(AccessContext.for_practices([a1.practice_id])) as session:
        cipher = cipher_for(session, a1.practice_id, MASTER_KEY)
        found = session.scalars(
            select(Client).where(Client.email_bidx == cipher.email_index("  JANSEN.a1@Example.NL "))
        ).all()
        assert [c.id for c in found] == [a1.client_id]
        assert cipher.decrypt("email", found[0].email_enc) == "jansen.a1@example.nl"
        by_phone = session.scalars(
            select(Client).where(Client.phone_bidx == cipher.phone_index("+31 6 1234 5678"))
        )
        assert [c.id for c in by_phone] == [a1.client_id]


def test_ciphertext_does_not_decrypt_in_another_practice_or_column(world_db):
    a1, b1 = world_db.world.practices["a1"], world_db.world.practices["b1"]
    with world_db.system() as session:
        a_cipher = cipher_for(session, a1.practice_id, MASTER_KEY)
        b_cipher = cipher_for(session, b1.practice_id, MASTER_KEY)
        stolen = session.scalar(select(Client.email_enc).where(Client.practice_id == a1.practice_id))
        wrapped_a = session.get(TenantDataKey, (a1.practice_id, 1)).wrapped_key
    with pytest.raises(DecryptionError):
        b_cipher.decrypt("email", stolen)
    with pytest.raises(DecryptionError):
        a_cipher.decrypt("phone", stolen)  # right key, wrong column
    with pytest.raises(DecryptionError):
        unwrap_data_key(MASTER_KEY, b1.practice_id, wrapped_a)  # a's wrapped key copied to b
    with pytest.raises(DecryptionError):
        unwrap_data_key(bytes(32), a1.practice_id, wrapped_a)  # wrong master key
    # Blind indexes are keyed per practice: the same e-mail gives unrelated index values in a1 and b1.
    assert a_cipher.email_index("x@y.nl") != b_cipher.email_index("x@y.nl")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [("06-12345678", "+31612345678"), ("+31 6 1234 5678", "+31612345678"), ("0031612345678", "+31612345678"),
     ("020 - 555 12 34", "+31205551234")],
)  # fmt: skip
def test_dutch_phone_numbers_normalise_to_one_form(typed, canonical):
    assert normalise_phone(typed) == canonical


def test_writes_are_audited_with_the_actor_and_the_row_ids(world_db, admin_conn):
    a1 = world_db.world.practices["a1"]
    admin_conn.execute("SET LOCAL ROLE vetconnect_app")
    admin_conn.execute(
        "SELECT set_config('app.user_id', %s, true), set_config('app.practice_ids', %s, true)",
        (str(a1.user_id), str(a1.practice_id)),
    )
    admin_conn.execute("UPDATE patient SET colour = 'zwart' WHERE id = %s", (a1.patient_id,))
    action, entity, ids, actor = admin_conn.execute(
        "SELECT action, entity, entity_ids, actor_user_id FROM audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert (action, entity, ids, actor) == ("update", "patient", [a1.patient_id], a1.user_id)


def test_a_bulk_write_is_audited_with_every_id_stored_uncompressed(world_db, admin_conn):
    """Partitions made at onboarding (after the migrations) keep the parent's EXTERNAL storage, so a large id
    list is written out of line without pglz (migration 0306)."""
    a1 = world_db.world.practices["a1"]
    storage = admin_conn.execute(
        "SELECT c.relname, a.attstorage FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'entity_ids' "
        "WHERE i.inhparent = 'audit_log'::regclass"
    ).fetchall()
    assert storage and {s for _, s in storage} == {"e"}
    admin_conn.execute("SET LOCAL ROLE vetconnect_app")
    admin_conn.execute("SELECT set_config('app.practice_ids', %s, true)", (str(a1.practice_id),))
    written = admin_conn.execute(
        "INSERT INTO weight_measurement (practice_id, patient_id, measured_at, weight_grams) "
        "SELECT %s, %s, now() - g * interval '1 day', 4000 + g FROM generate_series(1, 5000) g RETURNING id",
        (a1.practice_id, a1.patient_id),
    ).fetchall()
    ids, compression = admin_conn.execute(
        "SELECT entity_ids, pg_column_compression(entity_ids) FROM audit_log "
        "WHERE entity = 'weight_measurement' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert ids == sorted(r[0] for r in written) and compression is None


def test_shared_resource_changes_are_versioned_with_old_and_new(world_db, admin_conn):
    a1 = world_db.world.practices["a1"]
    admin_conn.execute("SET LOCAL ROLE vetconnect_app")
    admin_conn.execute(
        "SELECT set_config('app.user_id', %s, true), set_config('app.practice_ids', %s, true)",
        (str(a1.user_id), str(a1.practice_id)),
    )
    admin_conn.execute(
        "UPDATE product_price_override SET price_cents = 4900 WHERE practice_id = %s", (a1.practice_id,)
    )
    admin_conn.execute("UPDATE product SET price_cents = 4600 WHERE code = 'C-CONS'")
    admin_conn.execute("RESET ROLE")
    rows = admin_conn.execute(
        "SELECT table_name, practice_id, changed_by, old ->> 'price_cents', new ->> 'price_cents' "
        "FROM shared_resource_change WHERE operation = 'UPDATE' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("product_price_override", a1.practice_id, a1.user_id, "4700", "4900"),
        ("product", None, a1.user_id, "4500", "4600"),
    ]


def test_every_system_session_leaves_its_reason(world_db):
    with world_db.system(reason="nightly reconciliation test") as session:
        session.execute(text("SELECT 1"))
    with psycopg.connect(_libpq(world_db.admin_url)) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM system_access ORDER BY id").fetchall()]
    assert reasons[-1] == "nightly reconciliation test"
    with pytest.raises(ValueError, match="needs a reason"), world_db.system(reason=" "):
        pass


def test_offboarding_detaches_the_practice_partitions(fresh_world_db):
    fresh_db, world = fresh_world_db, fresh_world_db.world
    a2 = world.practices["a2"].practice_id
    with fresh_db.system() as session:
        detached = set(session.scalars(text("SELECT offboard_practice(:p)"), {"p": a2}))
        assert (
            session.execute(text("SELECT count(*) FROM event WHERE practice_id = :p"), {"p": a2}).scalar()
            == 0
        )
    assert {f"event_p{a2}", f"audit_log_p{a2}", f"invoice_line_p{a2}", f"lab_observation_p{a2}"} <= detached
    assert f"appointment_p{a2}" not in detached  # visits reference it
    with psycopg.connect(_libpq(fresh_db.admin_url)) as conn:
        archived = conn.execute(f"SELECT count(*) FROM event_p{int(a2)}").fetchone()[0]
        offboarded = conn.execute("SELECT offboarded_at FROM tenant WHERE id = %s", (a2,)).fetchone()[0]
    assert archived == 1
    assert isinstance(offboarded, dt.datetime)
    with fresh_db.system() as session:
        from warehouse.security.accounts import practice_ids_for_user

        assert practice_ids_for_user(session, world.franchise_manager_id) == (
            world.practices["a1"].practice_id,
        )


def test_sessions_and_linked_identities_are_visible_only_to_their_own_user(world_db, admin_conn):
    """user_session and oidc_identity are global (not practice data) like app_user: RLS shows a user their own
    rows only, whatever practices they share; the token digest is not readable by the application at all."""
    a1, a2 = world_db.world.practices["a1"], world_db.world.practices["a2"]
    for user_id in (a1.user_id, a2.user_id):
        admin_conn.execute(
            "INSERT INTO user_session (user_id, token_sha256, method, idle_timeout, expires_at) "
            "VALUES (%s, gen_random_uuid()::text::bytea, 'password', '8 hours', now() + interval '12 hours')",
            (user_id,),
        )
        admin_conn.execute(
            "INSERT INTO oidc_identity (user_id, issuer, subject) VALUES (%s, 'https://idp.example', %s)",
            (user_id, f"sub-{user_id}"),
        )
    # A franchise manager sees every practice of the franchise, but not other people's sessions.
    as_role(admin_conn, AccessContext.for_practices([a1.practice_id, a2.practice_id], user_id=a1.user_id))
    assert admin_conn.execute("SELECT user_id FROM user_session").fetchall() == [(a1.user_id,)]
    assert admin_conn.execute("SELECT user_id FROM oidc_identity").fetchall() == [(a1.user_id,)]
    ended = admin_conn.execute(
        "UPDATE user_session SET revoked_at = now() WHERE user_id = %s", (a2.user_id,)
    ).rowcount
    assert ended == 0
    for statement in (
        "SELECT token_sha256 FROM user_session",
        "UPDATE oidc_identity SET subject = 'taken' WHERE user_id = " + str(int(a1.user_id)),
        "DELETE FROM user_session",
    ):
        admin_conn.execute("SAVEPOINT denied")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin_conn.execute(statement)
        admin_conn.execute("ROLLBACK TO SAVEPOINT denied")


def test_colleagues_names_are_readable_but_only_your_own_credentials(world_db, admin_conn):
    """Migration 0403: the application role selects every app_user column but the password hash and the TOTP
    secret; a user reads their own through own_credentials(), which knows no other user."""
    a1, a2 = world_db.world.practices["a1"], world_db.world.practices["a2"]
    admin_conn.execute("UPDATE app_user SET totp_secret_enc = '\\x0102'::bytea WHERE id = %s", (a1.user_id,))
    as_role(admin_conn, AccessContext.for_practices([a1.practice_id, a2.practice_id], user_id=a1.user_id))
    names = admin_conn.execute("SELECT id, username FROM app_user ORDER BY id").fetchall()
    assert {a1.user_id, a2.user_id} <= {row[0] for row in names}
    for statement in (
        "SELECT password_hash FROM app_user",
        "SELECT * FROM app_user",
        "SELECT totp_secret_enc FROM app_user WHERE id = " + str(int(a1.user_id)),
    ):
        admin_conn.execute("SAVEPOINT denied")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin_conn.execute(statement)
        admin_conn.execute("ROLLBACK TO SAVEPOINT denied")
    own = admin_conn.execute("SELECT password_hash, totp_secret_enc FROM own_credentials()").fetchall()
    assert len(own) == 1 and own[0][0].startswith("$argon2id$") and bytes(own[0][1]) == b"\x01\x02"
    as_role(admin_conn, AccessContext.for_practices([a1.practice_id, a2.practice_id], user_id=a2.user_id))
    theirs = admin_conn.execute("SELECT totp_secret_enc FROM own_credentials()").fetchall()
    assert theirs == [(None,)]
