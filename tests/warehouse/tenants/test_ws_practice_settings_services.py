"""Practice settings services under RLS: the invoice details saved by the manager at that practice only, checked
per field and saved together or not at all, audited old -> new; the app role writes no other tenant column and
no other practice; an invoice series set up deliberately, previewed, confirmed, audited, and refused when its
numbers would repeat ones already used."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from warehouse.billing import numbering
from warehouse.billing.drafts import create_draft
from warehouse.billing.practice_details import practice_details_problems
from warehouse.schema.billing import Invoice
from warehouse.schema.operations import AuditLog
from warehouse.schema.tenancy import Tenant
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted
from warehouse.tenants import practice_settings as ps

MANAGER = frozenset({"practice_manager"})
TODAY = dt.date(2026, 12, 3)
NEW = {"address": "Oudegracht 12", "postcode": "3511ar", "city": "Utrecht", "vat_number": "nl 812345678 b02",
       "kvk_number": "87654321", "iban": "nl91 abna 0417 1643 00"}  # fmt: skip


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def _details(db, practice_id):
    with db.system() as session:
        practice = session.get(Tenant, practice_id)
        return {c: getattr(practice, c) for c in ps.DETAIL_FIELDS}


def _audit(db, practice_id, entity):
    with db.system() as session:
        return list(session.scalars(select(AuditLog).where(
            AuditLog.practice_id == practice_id, AuditLog.entity == entity).order_by(AuditLog.seq)))  # fmt: skip


def test_manager_saves_the_details_normalised_and_audited_old_to_new(ws_db):
    a1 = ws_db.world.practices["a1"]
    before = _details(ws_db, a1.practice_id)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        saved = ps.save_practice_details(session, Actor.at(a1.user_id, a1.practice_id, MANAGER),
                                         practice_id=a1.practice_id, values=NEW)  # fmt: skip
    assert saved == {"address": "Oudegracht 12", "postcode": "3511 AR", "city": "Utrecht",
                     "vat_number": "NL812345678B02", "kvk_number": "87654321", "iban": "NL91ABNA0417164300"}  # fmt: skip
    assert _details(ws_db, a1.practice_id) == saved
    entry = _audit(ws_db, a1.practice_id, "practice_details")[-1]
    assert entry.actor_user_id == a1.user_id and entry.entity_ids == [a1.practice_id]
    assert entry.detail["changes"]["city"] == {"old": before["city"], "new": "Utrecht"}
    assert "iban" not in entry.detail["changes"] and set(entry.detail["changes"]) >= {
        "address",
        "vat_number",
    }  # only changes
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        assert ps.practice_details(session, a1.practice_id) == saved
        latest = ps.settings_history(session, a1.practice_id).row(0, named=True)
        assert latest["by"] == "Vet a1"  # the colleague's name, read under RLS
        assert "city Amsterdam → Utrecht" in latest["change"] and "VAT number NL859876543B01 → NL812345678B02" in (
            latest["change"])  # fmt: skip
        assert practice_details_problems(session.get(Tenant, a1.practice_id)) == []  # issuable


def test_every_bad_field_is_named_and_nothing_is_saved(ws_db):
    a1 = ws_db.world.practices["a1"]
    before = _details(ws_db, a1.practice_id)
    entries = len(_audit(ws_db, a1.practice_id, "practice_details"))
    bad = {**NEW, "iban": "NL00ABNA0417164300", "postcode": "35 AR", "kvk_number": "1234", "city": " "}
    with ws_db.as_app(_ctx(ws_db, "a1")) as session, pytest.raises(ps.DetailsInvalid) as refused:
        ps.save_practice_details(session, Actor.at(a1.user_id, a1.practice_id, MANAGER),
                                 practice_id=a1.practice_id, values=bad)  # fmt: skip
    assert set(refused.value.errors) == {"iban", "postcode", "kvk_number", "city"}
    assert "not a valid IBAN" in refused.value.errors["iban"]
    assert _details(ws_db, a1.practice_id) == before  # not the good address, not the good VAT number either
    assert len(_audit(ws_db, a1.practice_id, "practice_details")) == entries


def test_only_a_settings_role_at_that_practice_may_save(ws_db):
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session, pytest.raises(NotPermitted, match="settings"):
        ps.save_practice_details(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist", "veterinarian"}),
                                 practice_id=a1.practice_id, values=NEW)  # fmt: skip
    # A manager at a1 is nothing at b1.
    with (
        ws_db.as_app(_ctx(ws_db, "a1")) as session,
        pytest.raises(NotPermitted, match=f"practice {b1.practice_id}"),
    ):
        ps.save_practice_details(session, Actor.at(a1.user_id, a1.practice_id, MANAGER),
                                 practice_id=b1.practice_id, values=NEW)  # fmt: skip
    assert _details(ws_db, a1.practice_id)["city"] == "Amsterdam"


def test_the_app_role_updates_only_the_invoice_details_of_a_practice_it_sees(ws_db):
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    with (
        ws_db.as_app(_ctx(ws_db, "a1")) as session,
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        session.execute(text("UPDATE tenant SET name = 'Overgenomen' WHERE id = :p"), {"p": a1.practice_id})
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        hidden = session.execute(
            text("UPDATE tenant SET city = 'Elders' WHERE id = :p"), {"p": b1.practice_id}
        )
        franchise = session.execute(
            text("UPDATE tenant SET city = 'Elders' WHERE id = :f"), {"f": a1.franchise_id}
        )
        assert hidden.rowcount == 0 and franchise.rowcount == 0
    assert _details(ws_db, b1.practice_id)["city"] == "Amsterdam"


def test_a_new_series_is_previewed_confirmed_audited_and_numbers_the_next_invoice(ws_db):
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(a1.user_id, a1.practice_id, MANAGER)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        overview = ps.series_overview(session, a1.practice_id, TODAY)
        assert (overview.pattern, overview.origin) == ("2026-a1-NNNN", "detected")
        assert (overview.last_issued, overview.next_number) == ("2026-a1-0001", "2026-a1-0002")
        first = ps.preview_series(session, a1.practice_id, prefix="VC", per_year=True, width="5", today=TODAY)
        assert first == "VC2026-00001"
        with pytest.raises(numbering.SeriesError) as unconfirmed:
            ps.set_up_invoice_series(session, actor, practice_id=a1.practice_id, prefix="VC", per_year=True,
                                     width="5", today=TODAY, confirmed=False)  # fmt: skip
        assert unconfirmed.value.field == "confirm" and "VC2026-00001" in str(unconfirmed.value)
        assert ps.series_overview(session, a1.practice_id, TODAY).next_number == "2026-a1-0002"  # unchanged
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        assert ps.set_up_invoice_series(session, actor, practice_id=a1.practice_id, prefix="VC", per_year=True,
                                        width="5", today=TODAY, confirmed=True) == "VC2026-00001"  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        overview = ps.series_overview(session, a1.practice_id, TODAY)
        assert (overview.pattern, overview.origin, overview.next_number) == (
            "VCYYYY-NNNNN", "configured", "VC2026-00001")  # fmt: skip
        draft = create_draft(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}),
                             practice_id=a1.practice_id, client_id=a1.client_id)  # fmt: skip
        number = numbering.take_number(session, a1.practice_id, TODAY)
        assert number == "VC2026-00001" and draft.number.startswith(numbering.DRAFT_PREFIX)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        assert ps.settings_history(session, a1.practice_id)["change"][0] == (
            "invoice series 2026-a1-NNNN → VCYYYY-NNNNN (next number VC2026-00001)")  # fmt: skip
    (entry,) = [e for e in _audit(ws_db, a1.practice_id, "invoice_series") if e.action == "set_up"]
    assert entry.actor_user_id == a1.user_id and entry.detail == {
        "old": {"pattern": "2026-a1-NNNN", "origin": "detected", "next_number": "2026-a1-0002"},
        "new": {"pattern": "VCYYYY-NNNNN", "origin": "configured", "next_number": "VC2026-00001"},
    }


def test_a_series_whose_numbers_repeat_used_ones_is_refused(ws_db):
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(a1.user_id, a1.practice_id, MANAGER)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        # "2026-A1-0001" is "2026-a1-0001", already issued, to anyone reading it.
        with pytest.raises(numbering.SeriesError, match="repeat number 2026-a1-0001") as refused:
            ps.set_up_invoice_series(session, actor, practice_id=a1.practice_id, prefix="2026-A1-", per_year=False,
                                     width=4, today=TODAY, confirmed=True)  # fmt: skip
        assert refused.value.field == "prefix"
        # The same series in its own spelling continues after its numbers: no repeat, so it is allowed.
        assert ps.preview_series(session, a1.practice_id, prefix="2026-a1-", per_year=False, width=4,
                                 today=TODAY) == "2026-a1-0002"  # fmt: skip
        with pytest.raises(NotPermitted):
            ps.set_up_invoice_series(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}),
                                     practice_id=a1.practice_id, prefix="VC", per_year=True, width=5, today=TODAY,
                                     confirmed=True)  # fmt: skip
        assert numbering.series_of(session, a1.practice_id).prefix == "2026-a1-"
        assert (
            session.scalar(select(Invoice.number).where(Invoice.practice_id == a1.practice_id))
            == "2026-a1-0001"
        )
