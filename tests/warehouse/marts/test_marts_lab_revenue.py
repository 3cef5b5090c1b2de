"""Lab revenue in the marts comes from the lab articles of the synced Animana price list (category "lab" →
product kind "lab"), and follows a lab line the sync brings in."""

from __future__ import annotations

from conftest import sync
from sqlalchemy import text

from warehouse.kernel.tenancy import AccessContext
from warehouse.marts import kpis
from warehouse.marts.refresh import refresh_all

# The lab article's lines per day straight from the record, told apart by the simulator's code (not by kind).
LAB_LINES = (
    "SELECT i.issued_on, sum(l.line_excl_cents) FROM invoice_line l "
    "JOIN invoice i ON i.practice_id = l.practice_id AND i.id = l.invoice_id "
    "JOIN product p ON p.franchise_id = l.franchise_id AND p.id = l.product_id "
    "WHERE l.practice_id = :p AND p.code = 'C014' AND i.status NOT IN ('draft', 'void') GROUP BY i.issued_on"
)
MART = "SELECT day, lab_revenue_excl_cents FROM mart_practice_day WHERE practice_id = :p AND lab_revenue_excl_cents <> 0"


def _lab(db, practice_id: int) -> tuple[dict, dict]:  # noqa: ANN001
    with db.as_app(AccessContext.for_practices([practice_id])) as session:
        lines = dict(session.execute(text(LAB_LINES), {"p": practice_id}).all())
        mart = dict(session.execute(text(MART), {"p": practice_id}).all())
    return lines, mart


def test_lab_revenue_follows_the_synced_lab_lines(mart_world):
    world, db = mart_world, mart_world.db
    refresh_all(db.app_engine, db.admin_engine)
    practice = world.practices[0]
    lines, mart = _lab(db, practice.practice_id)
    assert lines and mart == lines  # every day with a blood test billed, and only those

    # A new invoice with two blood tests arrives through the sync on the latest day with lab revenue.
    day = max(lines)
    with db.system("test: a client") as session:
        relation = int(session.scalar(text("SELECT min(animana_id::bigint) FROM client WHERE practice_id = :p"),
                                      {"p": practice.practice_id}))  # fmt: skip
    line = {"product_code": "C014", "description": "Laboratoriumonderzoek bloed", "quantity": 2,
            "unit_price_cents": 9800, "vat_rate": 21, "line_total_cents": 19600, "vat_cents": 4116}  # fmt: skip
    world.sim.inject(practice.animana_id, "invoices", [{
        "relation_id": relation, "appointment_id": None, "date": day.isoformat(), "number": "LAB-TEST-1",
        "lines": [line], "total_excl_vat_cents": 19600, "vat_cents": 4116, "total_cents": 23716,
    }])  # fmt: skip
    sync(world)
    refresh_all(db.app_engine, db.admin_engine)

    after_lines, after_mart = _lab(db, practice.practice_id)
    assert after_lines == {**lines, day: lines[day] + 19600}
    assert after_mart == after_lines
    with db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        tiles = {t.kpi.key: t.value for t in kpis.overview(session, [practice.practice_id], day, day).tiles}
    assert tiles["lab_revenue"] == (lines[day] + 19600) / 100
