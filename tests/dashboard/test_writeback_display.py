"""What the integration pages show, without a page: the status table's cells (English labels, Dutch dates and
numbers), a waiting time in words, and a conflict's values in Dutch formats."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from dashboard.components import tables
from dashboard.components.writeback import STATUS_SPEC, duration, readable, status_table
from tests.factories import TZ
from warehouse.integration.status import ModuleStatus


@given(st.floats(min_value=0, max_value=400 * 86_400, allow_nan=False))
def test_a_duration_reads_as_whole_minutes_hours_or_days_rounded_down(seconds):
    shown = duration(seconds)
    minutes = int(seconds // 60)
    if m := re.fullmatch(r"(\d+) min", shown):
        assert 1 <= int(m[1]) == minutes < 60
    elif m := re.fullmatch(r"(\d+) h (\d\d) min", shown):
        assert int(m[1]) * 60 + int(m[2]) == minutes and 1 <= int(m[1]) < 24
    elif m := re.fullmatch(r"(\d+) d (\d+) h", shown):
        assert int(m[1]) * 24 + int(m[2]) == minutes // 60 and int(m[2]) < 24
    else:
        assert shown == "< 1 min" and minutes == 0


def test_nothing_waiting_reads_as_a_dash():
    assert duration(None) == "–"


def test_the_status_table_reads_in_english_with_dutch_local_times_and_numbers():
    synced = dt.datetime(2026, 12, 4, 8, 5, tzinfo=dt.UTC)
    status = ModuleStatus(
        practice_id=1, practice_code="a1", practice_name="Praktijk a1", linked=True, module="agenda",
        module_label="Agenda", mode="hybrid", mode_changed_at=None, last_sync=synced, sync_lag_s=7_260,
        outbox_depth=1_234, oldest_pending=synced - dt.timedelta(days=1), dead_letters=2, oldest_dead_letter=synced,
        sent_24h=0, writeback_lag_p95_s=None, open_conflicts=0, oldest_conflict=None,
    )  # fmt: skip
    [row] = tables.labelled(status_table([status]), STATUS_SPEC, zone=TZ).to_dicts()
    assert row == {
        "Module": "Agenda", "Mode": "Hybrid", "Last sync": "4 dec 2026 09:05", "Sync lag": "2 h 01 min",
        "Queue": "1.234", "Oldest waiting": "3 dec 2026 09:05", "Not delivered": "2", "Open conflicts": "0",
        "Attention": "2 not delivered (dead letters)",
    }  # fmt: skip


def test_conflict_values_read_in_dutch_formats_and_english_words():
    assert readable("starts_at", dt.datetime(2026, 12, 4, 8, 5, tzinfo=dt.UTC), TZ) == "4 dec 2026 09:05"
    assert readable("date_of_birth", "2019-04-01") == "1 apr 2019"
    assert readable("date_of_birth", dt.date(2019, 4, 1)) == "1 apr 2019"
    assert readable("active", True) == "yes" and readable("deceased", False) == "no"
    assert readable("quantity", Decimal("1234.5")) == "1.234,5"
    assert readable("amount_cents", 1250) == "€ 12,50"
    assert readable("status", "checked_in") == "checked in"
    assert readable("last_name", None) == "–" and readable("city", "") == "–"


@given(st.text(min_size=1).filter(lambda s: not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s)))
def test_other_text_is_shown_as_it_is(value):
    assert readable("subjective", value) == value
