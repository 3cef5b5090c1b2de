"""Referrals: the database grants the referred practice read-only access to exactly the referred patient's
history, exactly while the referral is active; every read lands on the referring practice's audit chain; the
findings come back into the referring practice's record."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from warehouse.kernel.audit import verify_chain
from warehouse.kernel.tenancy import AccessContext
from warehouse.privacy import consent
from warehouse.referrals import queries, service
from warehouse.referrals.errors import ReferralError
from warehouse.referrals.letter import referral_letter_pdf
from warehouse.security.permissions import Actor, NotPermitted

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def world(fresh_world_db):
    return fresh_world_db


def _vet(world, code: str) -> tuple[Actor, AccessContext]:
    rows = world.world.practices[code]
    return (
        Actor.at(rows.user_id, rows.practice_id, {"veterinarian"}),
        AccessContext.for_practices([rows.practice_id], user_id=rows.user_id),
    )


def _refer(world, to: str = "b1", **kwargs) -> int:
    a1 = world.world.practices["a1"]
    actor, context = _vet(world, "a1")
    with world.as_app(context) as session:
        referral = service.refer_patient(
            session, actor, practice_id=a1.practice_id, patient_id=a1.patient_id,
            to_practice_id=world.world.practices[to].practice_id, reason="Cardiology work-up",
            consent_how="in_person", **kwargs,
        )  # fmt: skip
        return referral.id


def _seen(world, reader: str) -> dict[str, int]:
    """What the reader's practice sees of a1's rows, per table."""
    a1 = world.world.practices["a1"].practice_id
    _, context = _vet(world, reader)
    with world.as_app(context) as session:
        return {
            table: session.execute(
                text(f"SELECT count(*) FROM {table} WHERE practice_id = :p"), {"p": a1}
            ).scalar_one()
            for table in ("patient", "client", "visit", "diagnosis", "vaccination", "prescription",
                          "lab_observation", "weight_measurement", "document", "document_content", "imaging_study",
                          "tenant_data_key", "appointment", "invoice")
        }  # fmt: skip


NOTHING = dict.fromkeys(
    ("patient", "client", "visit", "diagnosis", "vaccination", "prescription", "lab_observation",
     "weight_measurement", "document", "document_content", "imaging_study", "tenant_data_key", "appointment",
     "invoice"), 0,
)  # fmt: skip
HISTORY = {**dict.fromkeys(NOTHING, 1), "appointment": 0, "invoice": 0}


@pytest.mark.parametrize("to", ["b1", "a2"], ids=["other franchise", "same franchise"])
def test_access_begins_at_valid_from_is_read_only_and_ends_at_valid_until(world, to):
    assert _seen(world, to) == NOTHING
    referral_id = _refer(world, to, valid_from=dt.datetime.now(dt.UTC) + HOUR)
    assert _seen(world, to) == NOTHING  # before valid_from

    a1 = world.world.practices["a1"].practice_id
    with world.system() as session:
        session.execute(text("UPDATE referral SET valid_from = now() - interval '1 hour' WHERE id = :r"),
                        {"r": referral_id})  # fmt: skip
    assert _seen(world, to) == HISTORY  # the history, not the appointments nor the invoices

    _, context = _vet(world, to)
    with world.as_app(context) as session:
        changed = session.execute(
            text("UPDATE visit SET assessment = 'changed by the referred practice' WHERE practice_id = :p"),
            {"p": a1},
        ).rowcount
        assert changed == 0
    with world.system() as session:
        assert session.execute(
            text("SELECT assessment FROM visit WHERE practice_id = :p"), {"p": a1}
        ).scalar() == ("Gezond")
        session.execute(
            text("UPDATE referral SET valid_until = now() - interval '1 second' WHERE id = :r"),
            {"r": referral_id},
        )
    assert _seen(world, to) == NOTHING  # after valid_until


def test_an_insert_into_the_referring_practice_is_refused(world):
    _refer(world)
    a1 = world.world.practices["a1"]
    _, context = _vet(world, "b1")
    with pytest.raises(Exception, match="row-level security"), world.as_app(context) as session:
        session.execute(
            text("INSERT INTO weight_measurement (practice_id, patient_id, measured_at, weight_grams) "
                 "VALUES (:p, :pat, now(), 1000)"),
            {"p": a1.practice_id, "pat": a1.patient_id},
        )  # fmt: skip


def test_revoking_ends_access_at_the_next_statement(world):
    referral_id = _refer(world)
    a1 = world.world.practices["a1"]
    actor_a, context_a = _vet(world, "a1")
    _, context_b = _vet(world, "b1")
    with world.as_app(context_b) as reader:
        visits = text("SELECT count(*) FROM visit WHERE practice_id = :p")
        assert reader.execute(visits, {"p": a1.practice_id}).scalar_one() == 1
        with world.as_app(context_a) as session:
            service.revoke_referral(session, actor_a, practice_id=a1.practice_id, referral_id=referral_id,
                                    reason="Owner chose another clinic")  # fmt: skip
        assert (
            reader.execute(visits, {"p": a1.practice_id}).scalar_one() == 0
        )  # same transaction, next statement


def test_withdrawn_consent_ends_access(world):
    referral_id = _refer(world)
    a1 = world.world.practices["a1"]
    actor, context = _vet(world, "a1")
    assert _seen(world, "b1") == HISTORY
    with world.as_app(context) as session:
        service.withdraw_consent(session, actor, practice_id=a1.practice_id, referral_id=referral_id)
    assert _seen(world, "b1") == NOTHING


def test_referring_records_the_owner_s_consent_and_withdrawing_it_on_the_client_card_ends_access(world):
    a1 = world.world.practices["a1"]
    actor, context = _vet(world, "a1")
    with world.as_app(context) as session:
        owner = queries.primary_owner(session, a1.practice_id, a1.patient_id)
        assert not consent.has_consent(session, a1.practice_id, owner, consent.Purpose.REFERRAL_SHARING)
    _refer(world)  # consent "in person", given for this referral
    with world.as_app(context) as session:
        given = consent.current_consents(session, a1.practice_id, owner)[consent.Purpose.REFERRAL_SHARING]
    assert (given.granted, given.how) == (True, "in_person")
    assert _seen(world, "b1") == HISTORY

    with world.as_app(context) as session:  # the owner changes their mind at the desk
        consent.record_consent(session, actor, a1.practice_id, owner, consent.Purpose.REFERRAL_SHARING, False,
                               "phone")  # fmt: skip
    assert _seen(world, "b1") == NOTHING


def test_another_practice_than_the_one_referred_to_sees_nothing(world):
    _refer(world, "b1")
    assert _seen(world, "a2") == NOTHING


def test_the_history_is_read_with_the_owner_and_every_read_is_audited_on_the_referring_chain(world):
    referral_id = _refer(world)
    a1, b1 = world.world.practices["a1"], world.world.practices["b1"]
    actor, context = _vet(world, "b1")
    with world.as_app(context) as session:
        history = queries.referred_history(session, actor, practice_id=a1.practice_id, referral_id=referral_id,
                                           master_key=MASTER_KEY)  # fmt: skip
    assert history.patient["name"] == "Bello-a1"
    assert (history.owner_name, history.owner_phone) == ("J. Jansen-a1", "06-12345678")
    assert history.visits["assessment"].to_list() == ["Gezond"]
    assert history.visits["diagnoses"].to_list() == ["Gezond"]
    assert history.lab_results.select("code", "value", "flag").rows() == [("GLU", "5,4", "")]
    assert history.prescriptions["product_name"].to_list() == ["Meloxicam"]
    with world.system() as session:
        reads = session.execute(
            text("""SELECT entity, actor_user_id, detail FROM audit_log
                    WHERE practice_id = :p AND action = 'read' AND detail ? 'referral_id' ORDER BY seq"""),
            {"p": a1.practice_id},
        ).all()  # fmt: skip
        report = verify_chain(session)
    assert [r.entity for r in reads] == ["patient", "client", "visit", "vaccination", "prescription",
                                         "lab_observation", "weight_measurement", "document"]  # fmt: skip
    assert {r.actor_user_id for r in reads} == {b1.user_id}
    assert reads[0].detail == {"referral_id": referral_id, "reader_practice_id": b1.practice_id}
    assert report.ok, report.problems


def test_reading_needs_records_read_at_the_practice_referred_to(world):
    referral_id = _refer(world)
    a1, b1 = world.world.practices["a1"], world.world.practices["b1"]
    receptionist = Actor.at(b1.user_id, b1.practice_id, {"receptionist"})
    _, context = _vet(world, "b1")
    with pytest.raises(NotPermitted), world.as_app(context) as session:
        queries.referred_history(session, receptionist, practice_id=a1.practice_id, referral_id=referral_id,
                                 master_key=MASTER_KEY)  # fmt: skip


def test_an_inactive_referral_cannot_be_read_and_its_read_is_not_audited(world):
    referral_id = _refer(world, valid_from=dt.datetime.now(dt.UTC) + HOUR)
    a1 = world.world.practices["a1"]
    actor, context = _vet(world, "b1")
    with pytest.raises(ReferralError, match="no longer shares"), world.as_app(context) as session:
        queries.referred_history(session, actor, practice_id=a1.practice_id, referral_id=referral_id,
                                 master_key=MASTER_KEY)  # fmt: skip
    with world.as_app(context) as session, pytest.raises(ReferralError, match="not active for your practice"):
        service.accept_referral(session, actor, practice_id=a1.practice_id, referral_id=referral_id)


def test_findings_come_back_into_the_referring_record(world):
    referral_id = _refer(world)
    a1, b1 = world.world.practices["a1"], world.world.practices["b1"]
    actor_b, context_b = _vet(world, "b1")
    with world.as_app(context_b) as session:
        service.accept_referral(session, actor_b, practice_id=a1.practice_id, referral_id=referral_id)
        own_lab = session.execute(text("SELECT id FROM lab_observation WHERE practice_id = :p"),
                                  {"p": b1.practice_id}).scalars().all()  # fmt: skip
        service.send_findings(
            session, actor_b, practice_id=a1.practice_id, referral_id=referral_id,
            findings="Mild mitral valve disease.", diagnoses=[service.Finding("Mitral valve disease", "1234")],
            lab_observation_ids=own_lab, letter="Dear colleague, ...",
        )  # fmt: skip
        service.complete_referral(session, actor_b, practice_id=a1.practice_id, referral_id=referral_id)
    assert _seen(world, "b1") == NOTHING  # completed: access ended
    actor_a, context_a = _vet(world, "a1")
    with world.as_app(context_a) as session:
        reports = queries.referral_reports(session, a1.practice_id, a1.patient_id)
        outgoing = queries.outgoing_referrals(session, a1.practice_id, now=dt.datetime.now(dt.UTC))
    new = [r for r in reports if r.findings == "Mild mitral valve disease."]
    assert len(new) == 1
    assert new[0].from_practice == "Praktijk b1"
    assert new[0].written_by == "Vet b1"
    assert new[0].diagnoses == "Mitral valve disease (VeNom 1234)"
    assert [(r["code"], r["value"], r["unit"]) for r in new[0].lab_results] == [("GLU", "5,4", "mmol/L")]
    assert outgoing.filter(outgoing["id"] == referral_id)["status"].to_list() == ["completed"]


def test_the_referred_practice_cannot_change_a_referral_but_through_its_functions(world):
    referral_id = _refer(world)
    _, context = _vet(world, "b1")
    with world.as_app(context) as session:
        changed = session.execute(
            text("UPDATE referral SET valid_until = now() + interval '10 years' WHERE id = :r"),
            {"r": referral_id},
        ).rowcount
    assert changed == 0
    actor_b, context_b = _vet(world, "b1")
    with world.as_app(context_b) as session:
        incoming = queries.incoming_referrals(session, context_b.practice_ids, now=dt.datetime.now(dt.UTC))
    assert incoming.select("patient", "other_practice", "status").rows() == [
        ("Bello-a1", "Praktijk a1", "open")
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": "  "}, "reason"),
        ({"consent_how": "telepathy"}, "consent_how"),
        ({"valid_days": 0}, "valid_days"),
        ({"to": "a1"}, "to_practice_id"),
    ],
)
def test_a_referral_is_refused_without_its_essentials(world, changes, field):
    a1 = world.world.practices["a1"]
    actor, context = _vet(world, "a1")
    to = world.world.practices[changes.pop("to", "b1")].practice_id
    arguments = {"reason": "Cardiology", "consent_how": "phone", **changes}
    with pytest.raises(ReferralError) as refused, world.as_app(context) as session:
        service.refer_patient(session, actor, practice_id=a1.practice_id, patient_id=a1.patient_id,
                              to_practice_id=to, **arguments)  # fmt: skip
    assert refused.value.field == field


def test_a_receptionist_cannot_refer(world):
    a1 = world.world.practices["a1"]
    _, context = _vet(world, "a1")
    with pytest.raises(NotPermitted), world.as_app(context) as session:
        service.refer_patient(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}),
                              practice_id=a1.practice_id, patient_id=a1.patient_id,
                              to_practice_id=world.world.practices["b1"].practice_id, reason="x",
                              consent_how="phone")  # fmt: skip


def test_the_letter_names_the_patient_the_owner_and_the_reason(world):
    referral_id = _refer(world)
    a1 = world.world.practices["a1"]
    _, context = _vet(world, "a1")
    with world.as_app(context) as session:
        pdf = referral_letter_pdf(session, a1.practice_id, referral_id, master_key=MASTER_KEY, compress=False)
    assert pdf.startswith(b"%PDF")
    for expected in (b"Bello-a1", b"Jansen-a1", b"06-12345678", b"Cardiology work-up", b"Praktijk b1"):
        assert expected in pdf
