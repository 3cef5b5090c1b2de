"""Property tests for the contact validators: Dutch postcodes, phone numbers (E.164) and e-mail addresses."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from warehouse.kernel.crypto import normalise_phone as blind_index_phone
from warehouse.kernel.validation import (
    InvalidEmail,
    InvalidPhone,
    InvalidPostcode,
    is_mobile,
    normalise_email,
    normalise_phone,
    normalise_postcode,
)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
postcode_digits = st.integers(min_value=1000, max_value=9999).map(str)
postcode_letters = st.text(LETTERS, min_size=2, max_size=2).filter(lambda s: s not in ("SA", "SD", "SS"))
postcode = st.tuples(postcode_digits, postcode_letters)
blanks = st.text(" \t", max_size=3)


@given(postcode, blanks, blanks, blanks, st.booleans())
def test_a_postcode_typed_in_any_case_and_spacing_becomes_1234_ab(parts, before, between, after, lower):
    digits, letters = parts
    typed = f"{before}{digits}{between}{letters.lower() if lower else letters}{after}"
    assert normalise_postcode(typed) == f"{digits} {letters}"


@given(postcode)
def test_postcode_normalisation_is_idempotent(parts):
    once = normalise_postcode("".join(parts))
    assert normalise_postcode(once) == once


@given(st.integers(0, 999).map(lambda n: f"{n:04d}"), postcode_letters)
def test_a_postcode_starting_with_0_is_refused(digits, letters):
    with pytest.raises(InvalidPostcode, match="cannot start with 0"):
        normalise_postcode(f"{digits} {letters}")


@given(postcode_digits, st.sampled_from(["SA", "SD", "SS", "sa", "ss"]))
def test_letters_postnl_never_uses_are_refused(digits, letters):
    with pytest.raises(InvalidPostcode, match=f"never uses the letters {letters.upper()}"):
        normalise_postcode(f"{digits} {letters}")


@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip()))
def test_anything_not_four_digits_and_two_letters_is_refused(text):
    assume(not re.fullmatch(r"\s*[0-9]{4}\s*[A-Za-z]{2}\s*", text))
    with pytest.raises(InvalidPostcode):
        normalise_postcode(text)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1234 A", "four digits and two letters"),
        ("123 AB", "four digits and two letters"),
        ("0123 AB", "cannot start with 0"),
        ("1234 SS", "never uses the letters SS"),
        ("", "empty"),
    ],
)
def test_postcode_examples_of_the_issue(typed, message):
    with pytest.raises(InvalidPostcode, match=message):
        normalise_postcode(typed)


# Dutch mobile numbers: 06 followed by 1-5 or 8 and seven digits (the 06-6 block is pagers, 06-7/06-9 unused).
mobile_subscriber = st.tuples(st.sampled_from("123458"), st.text("0123456789", min_size=7, max_size=7)).map(
    "".join
)
separators = st.sampled_from(["", " ", "-", " - ", "."])


@given(mobile_subscriber, separators, st.sampled_from(["06", "+316", "00316", "+31 6", "+31 (0)6"]))
def test_a_dutch_mobile_in_any_usual_form_becomes_e164(subscriber, sep, prefix):
    typed = f"{prefix}{sep}{subscriber[:4]}{sep}{subscriber[4:]}"
    assert normalise_phone(typed) == f"+316{subscriber}"
    assert is_mobile(normalise_phone(typed))


@given(st.sampled_from(["NL", "BE", "DE", "GB", "FR", "US"]), st.data())
def test_e164_round_trips_and_normalising_is_idempotent(region, data):
    example = phonenumbers.example_number_for_type(
        region,
        data.draw(
            st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        ),
    )
    assume(example is not None)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    assert normalise_phone(international) == e164
    assert normalise_phone(e164) == e164
    assert normalise_phone("00" + e164[1:]) == e164
    # The blind index normalises the stored form to itself, so a lookup finds what registration wrote.
    assert blind_index_phone(e164) == e164


# The shortest Dutch numbers have five digits: a municipality's 14 0xx (14020 is Amsterdam's).
@given(st.text("0123456789", min_size=1, max_size=4))
def test_too_short_a_number_is_refused(digits):
    with pytest.raises(InvalidPhone):
        normalise_phone(digits)


def test_the_shortest_dutch_numbers_are_accepted():
    assert normalise_phone("14020") == "+3114020"
    assert normalise_phone("0800-1234") == "+318001234"


@given(st.text(min_size=1, max_size=20).filter(lambda s: any(c.isalpha() for c in s)))
def test_a_number_with_letters_is_refused(text):
    with pytest.raises(InvalidPhone):
        normalise_phone(text)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("06-1234", "not a valid Dutch number"),
        ("06-71234567", "not a valid Dutch number"),  # no such block
        ("+999 1234567", "not a phone number|not a valid"),
        ("0800-FLOWERS", "only digits"),
        ("", "empty"),
    ],
)
def test_phone_examples(typed, message):
    with pytest.raises(InvalidPhone, match=message):
        normalise_phone(typed)


def test_a_landline_cannot_receive_an_sms():
    assert not is_mobile(normalise_phone("020-123 4567"))


local_part = st.from_regex(r"[a-z0-9_+\-]{1,20}(\.[a-z0-9_+\-]{1,10}){0,2}", fullmatch=True)
domain = st.from_regex(r"([a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?\.){1,3}[a-z]{2,6}", fullmatch=True)


@given(local_part, domain, blanks, st.booleans())
def test_an_email_address_is_kept_lower_case_and_trimmed(local, host, pad, upper):
    address = f"{local}@{host}"
    typed = f"{pad}{address.upper() if upper else address}{pad}"
    assert normalise_email(typed) == address
    assert normalise_email(normalise_email(typed)) == address


@given(local_part, domain)
def test_an_address_without_a_single_at_is_refused(local, host):
    with pytest.raises(InvalidEmail):
        normalise_email(f"{local}{host}")
    with pytest.raises(InvalidEmail):
        normalise_email(f"{local}@{host}@{host}")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("jan@", "needs a name, an @ and a domain"),
        ("jan@localhost", "not a domain name"),
        ("jan..smit@example.nl", "not allowed"),
        ("jan smit@example.nl", "not allowed"),
        ("jan@example.123", "top-level domain"),
        ("jan@-example.nl", "not a domain name"),
        ("  ", "empty"),
    ],
)
def test_email_examples(typed, message):
    with pytest.raises(InvalidEmail, match=message):
        normalise_email(typed)
