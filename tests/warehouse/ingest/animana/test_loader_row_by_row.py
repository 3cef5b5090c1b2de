"""The loader's fallback: when the set-based statement of a batch hits a constraint, each row is loaded in a
savepoint (re-staged each time in the same transaction) and exactly the refused rows are quarantined."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from connectors.animana.resources import agenda, staff
from warehouse.ingest.animana.load import load_batch
from warehouse.ingest.animana.rows import AppointmentRow, Batch, LoadTarget, ResourceRow
from warehouse.kernel.tenancy import AccessContext
from warehouse.tenants.admin import add_franchise, add_practice

MASTER_KEY = bytes(range(32))
START = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def _appointment(n: int, *, minutes: int = 15) -> AppointmentRow:
    starts = START + dt.timedelta(minutes=30 * n)
    return AppointmentRow(
        f"a{n}", "staff:1", None, None, None, starts, starts + dt.timedelta(minutes=minutes), "booked", None,
        START - dt.timedelta(days=1), None, START - dt.timedelta(days=1),
    )  # fmt: skip


def test_a_row_the_database_refuses_is_quarantined_and_the_rest_of_the_batch_loads(fresh_db) -> None:  # noqa: ANN001
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-rbr", name="Row By Row")
        practice = add_practice(
            session, franchise_id=franchise.id, code="rbr-1", name="Rbr", master_key=MASTER_KEY
        )
        target = LoadTarget(practice.id, franchise.id)
    context = AccessContext.for_practices([target.practice_id])
    with fresh_db.as_app(context) as session:
        load_batch(
            session,
            target,
            Batch("staff", rows=[ResourceRow("staff:1", "staff", "Dr. Ans", True)]),
            staff.SPEC.load,
        )

    # a3 ends before it starts: the table's check constraint refuses it, and only it.
    rows = [_appointment(n) for n in range(6)]
    rows[3] = _appointment(3, minutes=-10)
    with fresh_db.as_app(context) as session:
        counts = load_batch(session, target, Batch("agenda", rows=rows), agenda.SPEC.load)

    assert (counts.inserted, counts.updated, counts.quarantined) == (5, 0, 1)
    with fresh_db.as_app(context) as session:
        loaded = (
            session.execute(text("SELECT animana_id FROM appointment ORDER BY animana_id")).scalars().all()
        )
        quarantined = session.execute(text("SELECT external_id, reason FROM ingest_quarantine")).all()
    assert loaded == ["a0", "a1", "a2", "a4", "a5"]
    assert [q.external_id for q in quarantined] == ["a3"]
    assert quarantined[0].reason.startswith("refused by the database:")
    assert "ck_appointment_positive_length" in quarantined[0].reason
