"""Property tests for the patient registration form's validators: what they accept comes back tidied and within
the table's limits, what they refuse is refused at its own field."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.records.errors import RecordsError
from warehouse.records.registration import (
    MAX_AGE_YEARS,
    MAX_NAME_LENGTH,
    EstimatedAge,
    birth_date,
    microchip,
    months_before,
    patient_name,
    sex_code,
)
from warehouse.schema.clients import SEXES

days = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31))
valid_chip = st.tuples(
    st.integers(1, 998).map(lambda n: f"{n:03d}"), st.text("0123456789", min_size=12, max_size=12)
).map("".join)


def _refused_at(field: str, call, *args) -> RecordsError:  # noqa: ANN001
    with pytest.raises(RecordsError) as refused:
        call(*args)
    assert refused.value.field == field
    assert str(refused.value)  # a message to show at the field
    return refused.value


@given(valid_chip, st.sampled_from(["", " ", "-", "."]), st.integers(0, 15))
def test_a_valid_chip_comes_back_as_its_15_digits_however_it_was_typed(chip, separator, at):
    assert microchip(f" {chip[:at]}{separator}{chip[at:]} ") == chip


@given(st.text(" \t"))
def test_an_empty_chip_field_is_no_chip(blank):
    assert microchip(blank) is None


@given(st.text("0123456789", min_size=1, max_size=30).filter(lambda s: len(s) != 15))
def test_a_chip_of_another_length_is_refused_at_the_chip_field_with_the_count(digits):
    refused = _refused_at("microchip", microchip, digits)
    assert f"got {len(digits)}" in str(refused) and str(refused)[0].isupper()


@given(st.sampled_from(["000", "999"]), st.text("0123456789", min_size=12, max_size=12))
def test_a_reserved_prefix_is_refused(prefix, rest):
    assert "reserved" in str(_refused_at("microchip", microchip, prefix + rest))


@given(st.text(max_size=200))
def test_a_name_is_tidied_idempotently_or_refused_at_the_name_field(raw):
    tidy = " ".join(raw.split())
    if not tidy or len(tidy) > MAX_NAME_LENGTH:
        _refused_at("name", patient_name, raw)
    else:
        assert patient_name(raw) == tidy and patient_name(tidy) == tidy


@given(st.sampled_from(["male", "female", "unknown"]), st.booleans())
def test_sex_and_neutered_state_become_one_stored_value(sex, neutered):
    if sex == "unknown" and neutered:
        _refused_at("neutered", sex_code, sex, neutered)
        return
    code = sex_code(sex, neutered)
    assert code in SEXES and code.startswith(sex) and code.endswith("_neutered") == neutered


@given(st.text(max_size=10).filter(lambda s: s not in ("male", "female", "unknown")), st.booleans())
def test_any_other_sex_is_refused(sex, neutered):
    _refused_at("sex", sex_code, sex, neutered)


@given(days, st.integers(0, 12 * MAX_AGE_YEARS))
def test_months_before_goes_back_that_many_calendar_months(day, months):
    earlier = months_before(day, months)
    assert (day.year * 12 + day.month) - (earlier.year * 12 + earlier.month) == months
    assert earlier.day == day.day or earlier.day < day.day  # clamped to a shorter month's last day
    assert earlier <= day


@given(days, st.integers(0, MAX_AGE_YEARS * 366 + 400))
def test_a_past_date_of_birth_is_kept_as_known(today, days_ago):
    born = today - dt.timedelta(days=days_ago)
    if born < months_before(today, 12 * MAX_AGE_YEARS):
        _refused_at("date_of_birth", birth_date, born, today)
    else:
        assert birth_date(born, today) == (born, False)


@given(days, st.integers(1, 4000))
def test_a_future_date_of_birth_is_refused(today, days_ahead):
    refused = _refused_at("date_of_birth", birth_date, today + dt.timedelta(days=days_ahead), today)
    assert "future" in str(refused)


@given(days, st.integers(0, MAX_AGE_YEARS), st.integers(0, 11))
def test_an_estimated_age_gives_an_estimated_date_that_far_back(today, years, months):
    age = EstimatedAge(years, months)
    if years == months == 0:
        _refused_at("age", birth_date, age, today)
        return
    born, estimated = birth_date(age, today)
    assert estimated and born == months_before(today, 12 * years + months) and born < today


@given(days, st.one_of(st.integers(-100, -1), st.integers(MAX_AGE_YEARS + 1, 10_000)), st.integers(0, 11))
def test_an_impossible_age_is_refused(today, years, months):
    _refused_at("age", birth_date, EstimatedAge(years, months), today)


@given(days, st.integers(0, 30), st.one_of(st.integers(-50, -1), st.integers(12, 100)))
def test_months_outside_0_to_11_are_refused(today, years, months):
    _refused_at("age", birth_date, EstimatedAge(years, months), today)


def test_no_date_of_birth_is_allowed():
    assert birth_date(None, dt.date(2026, 12, 4)) == (None, False)
