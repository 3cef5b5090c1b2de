"""Client registration and contact edits against PostgreSQL under RLS (the factories' practices are not linked to
Animana, so these are native writes): what is stored (normalised, encrypted, indexed), the consents recorded as
``client_consent`` rows, field errors before anything is written, likely duplicates, the audit of an edit keeping
the old values as ciphertext."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import func, select, text

from tests.conftest import MASTER_KEY
from warehouse.clients.duplicates import likely_duplicates
from warehouse.clients.errors import ClientsError
from warehouse.clients.registration import (
    Consents,
    Contact,
    NewClient,
    current_contact,
    duplicates_before_registering,
    edit_contact,
    register_client,
)
from warehouse.kernel.ciphers import practice_cipher
from warehouse.privacy.consent import Purpose, consent_history, has_consent
from warehouse.schema.clients import Client
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)
DE_VRIES = NewClient(
    last_name="de Vries", first_name="Anna", initials="A.",
    contact=Contact(street="Kerkstraat", house_number="12 a", postcode="3511ab", city="Utrecht",
                    phone="06 - 2345 6789", email=" Anna.deVries@Example.NL ", preferred_channel="sms"),
    consents=Consents(reminders_email=True, reminders_sms=True, referral_sharing=False), consent_how="phone",
)  # fmt: skip


def _session(db, code):  # noqa: ANN001, ANN202
    with db.system() as session:
        context = access_context_for_user(session, db.world.practices[code].user_id)
    return db.as_app(context)


def _receptionist(db, code) -> Actor:  # noqa: ANN001
    rows = db.world.practices[code]
    return Actor.at(rows.user_id, rows.practice_id, {"receptionist"})


def _register(db, code="a1", new=DE_VRIES, **kwargs) -> int:  # noqa: ANN001
    with _session(db, code) as session:
        return register_client(session, _receptionist(db, code), practice_id=db.world.practices[code].practice_id,
                               new=new, master_key=MASTER_KEY, now=NOW, **kwargs)  # fmt: skip


def _clients(db) -> int:  # noqa: ANN001
    with db.system() as session:
        return session.scalar(select(func.count()).select_from(Client))


def test_a_registered_client_is_stored_normalised_encrypted_and_audited(ws_db):
    a1 = ws_db.world.practices["a1"]
    client_id = _register(ws_db, registered_despite=[a1.client_id])
    with ws_db.system() as session:
        row = session.get(Client, (a1.practice_id, client_id))
        cipher = practice_cipher(session, a1.practice_id, MASTER_KEY)
        assert (row.last_name, row.first_name, row.postcode, row.city) == (
            "de Vries",
            "Anna",
            "3511 AB",
            "Utrecht",
        )
        assert cipher.decrypt("phone", row.phone_enc) == "+31623456789"
        assert cipher.decrypt("email", row.email_enc) == "anna.devries@example.nl"
        assert cipher.decrypt("address", row.address_enc) == "Kerkstraat 12A"
        assert b"+31623456789" not in bytes(row.phone_enc)  # stored encrypted
        assert row.phone_bidx == cipher.phone_index("06-23456789")  # found however it is typed later
        history = consent_history(session, a1.practice_id, client_id)
        assert {(h.purpose, h.granted, h.recorded_at, h.recorded_by, h.how) for h in history} == {
            (Purpose.REMINDERS_EMAIL, True, NOW, "Vet a1", "phone"),
            (Purpose.REMINDERS_SMS, True, NOW, "Vet a1", "phone"),
            (Purpose.REFERRAL_SHARING, False, NOW, "Vet a1", "phone"),
            (Purpose.ANALYTICS, False, NOW, "Vet a1", "phone"),
        }  # one row per purpose: refused ones were asked too
        assert has_consent(session, a1.practice_id, client_id, Purpose.REMINDERS_SMS)
        assert not has_consent(session, a1.practice_id, client_id, "referral_sharing")
        assert row.preferred_channel == "sms" and row.animana_id is None and not row.writeback_pending
        audit = session.execute(
            text("SELECT actor_user_id, detail FROM audit_log WHERE practice_id = :p AND action = 'register' "
                 "AND entity = 'client' AND entity_ids = ARRAY[CAST(:c AS bigint)]"),
            {"p": a1.practice_id, "c": client_id},
        ).one()  # fmt: skip
        assert audit.actor_user_id == a1.user_id
        assert audit.detail["registered_despite"] == [a1.client_id]
        consent_audit = text(
            "SELECT detail FROM audit_log WHERE practice_id = :p AND action = 'consent' "
            "AND entity_ids = ARRAY[CAST(:c AS bigint)] ORDER BY seq"
        )
        details = session.execute(consent_audit, {"p": a1.practice_id, "c": client_id}).scalars().all()
        assert {"purpose": "reminders_sms", "granted": True, "how": "phone"} in details
        # Unlinked practice: nothing waits for Animana.
        outbox = text("SELECT count(*) FROM writeback_outbox WHERE table_name = 'client' AND row_id = :c")
        assert session.execute(outbox, {"c": client_id}).scalar_one() == 0


def test_every_wrong_field_is_reported_at_once_and_nothing_is_written(ws_db):
    before = _clients(ws_db)
    bad = NewClient(
        last_name="  ",
        contact=Contact(street="Kerkstraat", house_number="twaalf", postcode="1234 A", city="Utrecht",
                        phone="06-1234", email="anna@", preferred_channel="email"),
        consents=Consents(reminders_sms=True),
    )  # fmt: skip
    with pytest.raises(ClientsError) as refused:
        _register(ws_db, new=bad)
    errors = refused.value.errors
    assert set(errors) == {"last_name", "house_number", "postcode", "phone", "email", "preferred_channel"}
    assert "four digits and two letters" in errors["postcode"]
    assert "not a valid Dutch number" in errors["phone"]
    assert "needs a name, an @ and a domain" in errors["email"]
    assert errors["preferred_channel"] == "E-mail needs an e-mail address above."
    assert refused.value.field == "last_name"
    assert _clients(ws_db) == before


@pytest.mark.parametrize(
    ("new", "field", "message"),
    [
        (NewClient("Bakker", Contact(phone="020 123 4567"), consents=Consents(reminders_sms=True)),
         "consent_reminders_sms", "need a mobile number"),
        (NewClient("Bakker", consents=Consents(reminders_email=True)), "consent_reminders_email",
         "need an e-mail address"),
        (Contact(phone="020 123 4567", preferred_channel="sms"), "preferred_channel", "SMS needs a mobile number"),
        (Contact(postcode="0123 AB"), "postcode", "cannot start with 0"),
        (Contact(street="Kerkstraat", house_number="1", postcode="1234 SS", city="X"), "postcode", "never uses"),
        (Contact(street="Kerkstraat"), "house_number", "Fill in the house number too"),
        (Contact(preferred_channel="post"), "preferred_channel", "Post needs an address"),
    ],
)  # fmt: skip
def test_contact_rules_name_their_field(ws_db, new, field, message):
    before = _clients(ws_db)
    with pytest.raises(ClientsError) as refused:
        _register(
            ws_db, new=new if isinstance(new, NewClient) else NewClient(last_name="Bakker", contact=new)
        )
    assert message in refused.value.errors[field]
    assert _clients(ws_db) == before


def test_a_role_without_clients_write_may_not_register(ws_db):
    a1 = ws_db.world.practices["a1"]
    with _session(ws_db, "a1") as session, pytest.raises(NotPermitted, match="register clients"):
        register_client(session, Actor.at(a1.user_id, a1.practice_id, {"franchise_manager"}),
                        practice_id=a1.practice_id, new=DE_VRIES, master_key=MASTER_KEY)  # fmt: skip


def test_likely_duplicates_by_phone_email_and_similar_name_at_the_postcode(ws_db):
    a1 = ws_db.world.practices["a1"]
    # The factories' client at a1: Jansen-a1, 1012AB (stored without its space), 06-12345678, jansen.a1@…
    with _session(ws_db, "a1") as session:
        by_phone = duplicates_before_registering(
            session, a1.practice_id, NewClient(last_name="Pietersen", contact=Contact(phone="+31 6 1234 5678")),
            master_key=MASTER_KEY,
        )  # fmt: skip
        by_email = duplicates_before_registering(
            session, a1.practice_id, NewClient(last_name="X", contact=Contact(email="JANSEN.A1@example.nl")),
            master_key=MASTER_KEY,
        )  # fmt: skip
        by_name = likely_duplicates(session, a1.practice_id, last_name="Janssen-a1", postcode="1012 AB",
                                    phone=None, email=None, master_key=MASTER_KEY)  # fmt: skip
        elsewhere = likely_duplicates(session, a1.practice_id, last_name="Janssen-a1", postcode="3511 AB",
                                      phone="+31651234567", email="niemand@example.nl", master_key=MASTER_KEY)  # fmt: skip
    assert [(c.client_id, c.reasons) for c in by_phone] == [(a1.client_id, ("same phone number",))]
    assert [(c.client_id, c.reasons) for c in by_email] == [(a1.client_id, ("same e-mail address",))]
    assert [(c.client_id, c.name, c.reasons) for c in by_name] == [
        (a1.client_id, "J. Jansen-a1", ("similar name at 1012AB",))
    ]
    assert elsewhere == []
    # The same phone number at another practice (a2, b1 have one too) is not this practice's duplicate.
    assert all(c.client_id == a1.client_id for c in by_phone)


def test_a_new_registration_is_found_as_a_duplicate_of_the_next_one(ws_db):
    a1 = ws_db.world.practices["a1"]
    client_id = _register(ws_db)
    with _session(ws_db, "a1") as session:
        found = duplicates_before_registering(
            session, a1.practice_id,
            NewClient(last_name="Vries", contact=Contact(phone="0623456789", email="anna.devries@example.nl",
                                                         street="Oudegracht", house_number="5", postcode="3511 AB",
                                                         city="Utrecht")),
            master_key=MASTER_KEY,
        )  # fmt: skip
    assert [(c.client_id, c.reasons) for c in found] == [
        (client_id, ("same phone number", "same e-mail address", "similar name at 3511 AB"))
    ]


def test_editing_contact_writes_new_ciphertext_and_keeps_the_old_values_in_the_audit(ws_db):
    a1 = ws_db.world.practices["a1"]
    client_id = _register(ws_db)
    with _session(ws_db, "a1") as session:
        form = current_contact(session, a1.practice_id, client_id, master_key=MASTER_KEY)
        assert (form.street, form.house_number, form.phone) == ("Kerkstraat", "12A", "+31623456789")
        changed = edit_contact(
            session, _receptionist(ws_db, "a1"), practice_id=a1.practice_id, client_id=client_id,
            contact=Contact(street=form.street, house_number=form.house_number, postcode="3512 CD", city="Utrecht",
                            phone="06 8765 4321", email=form.email, preferred_channel="email"),
            master_key=MASTER_KEY,
        )  # fmt: skip
    assert changed == ["phone", "postcode", "preferred_channel"]
    with ws_db.system() as session:
        row = session.get(Client, (a1.practice_id, client_id))
        cipher = practice_cipher(session, a1.practice_id, MASTER_KEY)
        assert cipher.decrypt("phone", row.phone_enc) == "+31687654321"
        assert row.phone_bidx == cipher.phone_index("+31687654321")
        assert row.postcode == "3512 CD"
        detail = session.execute(
            text("SELECT detail FROM audit_log WHERE practice_id = :p AND action = 'edit_contact'"),
            {"p": a1.practice_id},
        ).scalar_one()
    old_phone = base64.b64decode(detail["changes"]["phone"]["old_ciphertext"])
    assert cipher.decrypt("phone", old_phone) == "+31623456789"  # the old value, readable with the key only
    assert "+31623456789" not in str(detail) and "0623456789" not in str(detail)
    assert detail["changes"]["postcode"] == {"old": "3511 AB", "new": "3512 CD"}
    assert set(detail["changes"]) == {"phone", "postcode", "preferred_channel"}
    with _session(ws_db, "a1") as session:  # the new number finds the client, the old one no longer does
        assert [c.client_id for c in likely_duplicates(session, a1.practice_id, last_name="Z", postcode=None,
                                                       phone="+31687654321", email=None, master_key=MASTER_KEY)] == [
            client_id]  # fmt: skip
        assert likely_duplicates(session, a1.practice_id, last_name="Z", postcode=None, phone="+31623456789",
                                 email=None, master_key=MASTER_KEY) == []  # fmt: skip


def test_an_edit_that_changes_nothing_writes_nothing_and_a_bad_one_is_refused_whole(ws_db):
    a1 = ws_db.world.practices["a1"]
    client_id = _register(ws_db)

    def audit_entries() -> int:
        with ws_db.system() as session:
            return session.execute(text("SELECT count(*) FROM audit_log WHERE practice_id = :p"),
                                   {"p": a1.practice_id}).scalar_one()  # fmt: skip

    before = audit_entries()
    with _session(ws_db, "a1") as session:
        form = current_contact(session, a1.practice_id, client_id, master_key=MASTER_KEY)
        assert edit_contact(session, _receptionist(ws_db, "a1"), practice_id=a1.practice_id, client_id=client_id,
                            contact=form, master_key=MASTER_KEY) == []  # fmt: skip
    with _session(ws_db, "a1") as session, pytest.raises(ClientsError) as refused:
        edit_contact(session, _receptionist(ws_db, "a1"), practice_id=a1.practice_id, client_id=client_id,
                     contact=Contact(phone="06 8765 4321", email="geen-adres"), master_key=MASTER_KEY)  # fmt: skip
    assert set(refused.value.errors) == {"email"}
    assert audit_entries() == before  # (a read of the form is not audited; nothing was written)
    with ws_db.system() as session:
        cipher = practice_cipher(session, a1.practice_id, MASTER_KEY)
        assert (
            cipher.decrypt("phone", session.get(Client, (a1.practice_id, client_id)).phone_enc)
            == "+31623456789"
        )


def test_another_practice_s_client_cannot_be_edited(ws_db):
    b1 = ws_db.world.practices["b1"]
    a1 = ws_db.world.practices["a1"]
    with _session(ws_db, "a1") as session, pytest.raises(ClientsError, match="does not exist"):
        edit_contact(session, Actor.at(a1.user_id, b1.practice_id, {"receptionist"}), practice_id=b1.practice_id,
                     client_id=b1.client_id, contact=Contact(), master_key=MASTER_KEY)  # fmt: skip
