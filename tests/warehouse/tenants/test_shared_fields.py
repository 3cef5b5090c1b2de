"""Property tests of what the shared-resource forms read: Dutch euro amounts, whole numbers with a thousands
dot, reminder placeholders, and a form read as a whole (every refused field named)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.kernel import formatting as fmt
from warehouse.tenants.shared_fields import (
    MAX_PRICE_CENTS,
    PLACEHOLDERS,
    RESOURCES,
    SharedResourceError,
    SharedResourceInvalid,
    check_placeholders,
    parse_fields,
    parse_price_cents,
    parse_whole,
)

CENTS = st.integers(min_value=0, max_value=MAX_PRICE_CENTS - 1)


@given(CENTS)
def test_a_price_as_written_reads_back_as_the_same_cents(cents):
    assert parse_price_cents(fmt.euros(cents)) == cents  # "€ 1.250,50"
    assert parse_price_cents(fmt.number(cents / 100, 2)) == cents  # "1.250,50", as the edit form shows it
    euros, rest = divmod(cents, 100)
    assert parse_price_cents(f"{euros},{rest:02d}") == cents  # typed without the thousands dots


@given(st.integers(min_value=1_000, max_value=999_999))
def test_a_dot_is_a_thousands_separator_never_a_decimal_point(euros):
    written = fmt.number(euros)  # "1.250": one thousand two hundred and fifty euros
    assert "." in written
    assert parse_price_cents(written) == euros * 100


@given(
    st.integers(min_value=0, max_value=99), st.integers(min_value=10, max_value=99).filter(lambda c: c % 10)
)
def test_an_english_decimal_point_is_refused_with_what_it_may_have_meant(euros, cents):
    with pytest.raises(SharedResourceError, match="Dutch way") as refused:
        parse_price_cents(f"{euros}.{cents}")
    assert refused.value.field == "price_cents"


@given(st.integers(min_value=1, max_value=999_999), st.integers(min_value=1, max_value=9))
def test_negative_amounts_and_fractions_of_a_cent_are_refused(euros, thousandth):
    with pytest.raises(SharedResourceError, match="negative"):
        parse_price_cents(f"-{euros},00")
    with pytest.raises(SharedResourceError, match="two decimals"):
        parse_price_cents(f"{euros},00{thousandth}")


@given(st.text())
def test_any_text_is_either_a_price_in_range_or_refused_at_the_price_field(raw):
    try:
        cents = parse_price_cents(raw)
    except SharedResourceError as exc:
        refusal = exc
    else:
        assert isinstance(cents, int) and 0 <= cents < MAX_PRICE_CENTS
        return
    assert refusal.field == "price_cents" and str(refusal)


@given(st.integers(min_value=5, max_value=480))
def test_a_whole_number_reads_with_or_without_the_thousands_dot(minutes):
    assert parse_whole(str(minutes), "duration_minutes", low=5, high=480, unit="minutes") == minutes
    assert parse_whole(fmt.number(minutes * 10), "n", low=0, high=10**6, unit="days") == minutes * 10


@given(
    st.one_of(st.integers(max_value=4), st.integers(min_value=481)).map(str)
    | st.sampled_from(["1,5", "", "x"])
)
def test_a_duration_outside_its_range_or_not_whole_is_refused_at_its_field(raw):
    with pytest.raises(SharedResourceError) as refused:
        parse_whole(raw, "duration_minutes", low=5, high=480, unit="minutes")
    assert refused.value.field == "duration_minutes"


WORDS = st.text(alphabet=string.ascii_letters + " ,.!", max_size=20)


@given(st.lists(st.tuples(WORDS, st.sampled_from(PLACEHOLDERS)), max_size=5), WORDS)
def test_a_template_of_known_placeholders_is_kept_as_written(pieces, tail):
    template = "".join(f"{words}{{{name}}}" for words, name in pieces) + tail
    assert check_placeholders(template, "body") == template


@given(
    st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
        lambda n: n not in PLACEHOLDERS
    )
)
def test_an_unknown_placeholder_is_named_in_the_refusal(name):
    with pytest.raises(SharedResourceError, match=f"{{{name}}} is not a placeholder"):
        check_placeholders(f"Beste {{client}}, {{{name}}}", "body")


@pytest.mark.parametrize(
    "template", ["Beste {client", "Beste client}", "{}", "{client!r}", "{client:>10}", "{0}"]
)
def test_broken_or_positional_placeholders_are_refused(template):
    with pytest.raises(SharedResourceError) as refused:
        check_placeholders(template, "subject")
    assert refused.value.field == "subject"


def test_a_form_is_read_whole_and_every_refused_field_is_named():
    vaccine = RESOURCES["vaccine_protocols"]
    with pytest.raises(SharedResourceInvalid) as refused:
        parse_fields(
            vaccine.fields, {"code": "dog chp", "name": "", "species": "dragon", "booster_interval_days": "0"}
        )
    assert set(refused.value.errors) == {"code", "name", "species", "booster_interval_days"}
    assert parse_fields(vaccine.fields, {"code": "dog-chp", "name": " CHP  hond ", "species": "dog",
                                         "booster_interval_days": "1.095"}) == {
        "code": "dog-chp", "name": "CHP hond", "species": "dog", "booster_interval_days": 1095}  # fmt: skip
