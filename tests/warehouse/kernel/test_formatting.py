"""Dutch display formats: what every page, PDF and message shows a user."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from warehouse.kernel import formatting as nl


def test_numbers_money_and_percentages_read_the_dutch_way():
    assert nl.number(84075.8, 1) == "84.075,8"
    assert nl.number(84075.8) == "84.076"
    assert nl.euros(8_407_580) == "€ 84.075,80"
    assert nl.euros(-150) == "€ -1,50"
    assert nl.euros_whole(84075.8) == "€ 84.076"
    assert nl.percent(0.153) == "15,3 %"
    assert nl.number(None) == nl.EMPTY and nl.euros(None) == nl.EMPTY


def test_dates_and_times_are_local_and_dutch():
    utc = dt.datetime(2026, 12, 3, 8, 5, tzinfo=dt.UTC)
    assert nl.date(dt.date(2026, 12, 3), weekday=True) == "do 3 dec 2026"
    assert nl.time(utc) == "09:05"  # CET is UTC+1 in December
    assert (
        nl.date_time(dt.datetime(2026, 7, 1, 22, 30, tzinfo=dt.UTC)) == "2 jul 2026 00:30"
    )  # CEST, next day
    assert nl.time(utc, ZoneInfo("Europe/London")) == "08:05"
    assert nl.date(None) == nl.EMPTY


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_euros_round_trip_to_the_cent(cents):
    text = nl.euros(cents)
    digits = text.replace("€", "").replace("\xa0", "").replace(" ", "").replace(".", "").replace(",", ".")
    assert round(float(digits) * 100) == cents
    assert text.count(",") == 1 and text.rsplit(",", 1)[1].isdigit() and len(text.rsplit(",", 1)[1]) == 2


def test_measured_values_keep_their_decimals_with_a_comma():
    assert [nl.measured(v) for v in ("18.2", "0.450", "310", "1250.5", "-3.1")] == [
        "18,2", "0,450", "310", "1.250,5", "-3,1"]  # fmt: skip
    assert [nl.measured(v) for v in ("negative", "<0.5", "NaN", "", None)] == [
        "negative", "<0.5", "NaN", nl.EMPTY, nl.EMPTY]  # fmt: skip


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False))
def test_a_measured_value_reads_back_as_the_same_number(value):
    text = nl.measured(str(value))
    assert Decimal(text.replace(".", "").replace(",", ".")) == value
    assert len(text.rsplit(",", 1)[1]) == 4  # the decimals it came with, after a comma
