"""The audit viewer's reads (warehouse.security.audit_trail): the filters return exactly the entries they
describe, pages walk the whole log without gaps, entries carry the sign-in session, the chain status shows a
tampered entry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text, update

from tests.factories import PASSWORD, TZ
from warehouse.kernel import audit
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.clients import Client, Patient
from warehouse.security import audit_trail
from warehouse.security.accounts import add_user, roles_by_practice
from warehouse.security.audit_trail import AuditFilter
from warehouse.security.permissions import Actor, NotPermitted
from warehouse.security.signin import SignedInUser, begin_sign_in, context_for_choice


@pytest.fixture
def trail(ws_db):
    """The vet of a1 reads a patient and renames it, and changes a client, from their signed-in session;
    returns (the practice manager as actor, the vet's profile)."""
    a1 = ws_db.world.practices["a1"]
    with ws_db.system() as session:
        manager = add_user(session, username="pm-a1", full_name="Manager A1", password=PASSWORD,
                           memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
        actor = Actor(manager.id, roles_by_practice(session, manager.id))
    vet = begin_sign_in(ws_db.admin_engine, "vet-a1", PASSWORD)
    assert isinstance(vet, SignedInUser) and vet.session_id is not None
    with ws_db.as_app(context_for_choice(vet, a1.practice_id)) as session:
        audit.record(session, practice_id=a1.practice_id, action="read", entity="patient",
                     entity_ids=[a1.patient_id])  # fmt: skip
        session.execute(update(Patient).where(Patient.id == a1.patient_id).values(name="Bello II"))
    with ws_db.as_app(context_for_choice(vet, a1.practice_id)) as session:
        session.execute(update(Client).where(Client.id == a1.client_id).values(first_name="Jan"))
    return actor, vet


def _page(ws_db, actor, audit_filter, **kwargs):  # noqa: ANN202
    a1 = ws_db.world.practices["a1"].practice_id
    with ws_db.as_app(_context(actor, a1)) as session:
        return audit_trail.audit_page(session, actor, a1, audit_filter, **kwargs)


def _context(actor: Actor, practice_id: int) -> AccessContext:
    return AccessContext.for_practices([practice_id], user_id=actor.user_id)


def _seen(page) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(e.action, e.entity) for e in page.entries]


def test_filters_by_user_subject_action_and_period(ws_db, trail):
    manager, vet = trail
    a1 = ws_db.world.practices["a1"]
    by_vet = _page(ws_db, manager, AuditFilter(user_id=vet.user_id))
    assert _seen(by_vet) == [("update", "client"), ("update", "patient"), ("read", "patient")]
    assert {e.session_id for e in by_vet.entries} == {vet.session_id}
    assert {e.user_name for e in by_vet.entries} == {"Vet a1"}
    patient = _page(ws_db, manager, AuditFilter(subject="patient", subject_id=a1.patient_id))
    # The patient's own entries and those on the rows of its record (the world's visit, vaccination…, written
    # by the set-up without a user); not the client's.
    assert ("update", "patient") in _seen(patient) and ("read", "patient") in _seen(patient)
    assert ("insert", "visit") in _seen(patient) and ("insert", "vaccination") in _seen(patient)
    assert not {entity for _, entity in _seen(patient)} & {"client", "invoice", "payment"}
    client = _page(ws_db, manager, AuditFilter(subject="client", subject_id=a1.client_id))
    assert ("update", "client") in _seen(client) and ("insert", "invoice") in _seen(client)
    assert not {entity for _, entity in _seen(client)} & {"patient", "visit"}
    reads = _page(ws_db, manager, AuditFilter(action="read", entity="patient"))
    assert _seen(reads) == [("read", "patient")] and reads.entries[0].entity_ids == (a1.patient_id,)
    today = dt.datetime.now(TZ).date()
    assert _page(ws_db, manager, AuditFilter(user_id=vet.user_id, since=today, until=today)).entries
    assert not _page(ws_db, manager, AuditFilter(since=today + dt.timedelta(days=1))).entries
    assert not _page(ws_db, manager, AuditFilter(until=today - dt.timedelta(days=1))).entries
    with pytest.raises(audit_trail.AuditFilterError) as refused:
        _page(ws_db, manager, AuditFilter(since=today, until=today - dt.timedelta(days=1)))
    assert refused.value.field == "until"
    with pytest.raises(audit_trail.AuditFilterError) as refused:
        _page(
            ws_db, manager, AuditFilter(subject="patient", subject_id=ws_db.world.practices["a2"].patient_id)
        )
    assert refused.value.field == "subject_id"  # another practice's patient is not found here


def test_pages_walk_the_whole_log_newest_first_without_gaps(ws_db, trail):
    manager, _ = trail
    everything = _page(ws_db, manager, AuditFilter(), limit=10_000)
    assert everything.next_before is None and len(everything.entries) > 5
    walked, before = [], None
    while True:
        page = _page(ws_db, manager, AuditFilter(), before=before, limit=4)
        walked += [e.seq for e in page.entries]
        if page.next_before is None:
            break
        before = page.next_before
    assert walked == [e.seq for e in everything.entries] == sorted(walked, reverse=True)


def test_only_an_auditor_of_the_practice_reads_its_trail(ws_db, trail):
    manager, vet = trail
    a1, a2 = ws_db.world.practices["a1"].practice_id, ws_db.world.practices["a2"].practice_id
    with pytest.raises(NotPermitted):
        _page(ws_db, vet.actor(), AuditFilter())
    with ws_db.as_app(_context(manager, a1)) as session, pytest.raises(NotPermitted):
        audit_trail.audit_page(session, manager, a2, AuditFilter())
    with ws_db.as_app(_context(manager, a1)) as session:
        assert "patient" in audit_trail.entities(session, manager, a1)
        # The franchise manager works at a1 too (a franchise role); a2's vet does not.
        assert audit_trail.staff(session, manager, a1) == {
            manager.user_id: "Manager A1", vet.user_id: "Vet a1", ws_db.world.franchise_manager_id: "Manager A"
        }  # fmt: skip


def test_the_chain_status_shows_a_tampered_entry(ws_db, trail):
    manager, vet = trail
    a1 = ws_db.world.practices["a1"].practice_id
    with ws_db.as_app(_context(manager, a1)) as session:
        report = audit_trail.chain_status(session, manager, a1)
    assert report.ok and report.entries_checked > 5 and report.practices_checked == 1
    target = _page(ws_db, manager, AuditFilter(user_id=vet.user_id, action="read")).entries[0].seq
    with ws_db.admin_engine.begin() as conn:
        conn.execute(
            text("""UPDATE audit_log SET detail = '{"rows": 99}' WHERE practice_id = :p AND seq = :s"""),
            {"p": a1, "s": target},
        )
    with ws_db.as_app(_context(manager, a1)) as session:
        report = audit_trail.chain_status(session, manager, a1)
    assert [(p.seq, p.problem) for p in report.problems] == [
        (target, "entry was altered after it was written")
    ]


def test_an_entry_s_detail_reads_as_words_not_json():
    assert audit_trail.readable_detail({"role": "nurse", "tenant_id": 2}) == "role: nurse · tenant id: 2"
    assert audit_trail.readable_detail({"changes": {"city": "Zeist"}, "note": None}) == (
        'changes: {"city": "Zeist"} · note: —'
    )
    assert audit_trail.readable_detail({}) == ""
