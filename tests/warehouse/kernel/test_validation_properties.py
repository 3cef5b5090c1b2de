"""Property tests for the microchip validator and the VAT arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.billing.vat import (
    VAT_HIGH_BP,
    VAT_LOW_BP,
    invoice_totals,
    line_amounts,
    round_cents,
    vat_rate_for,
)
from warehouse.kernel.validation import InvalidMicrochip, normalise_microchip

valid_prefix = st.integers(min_value=1, max_value=998).map(lambda n: f"{n:03d}")
valid_chip = st.tuples(valid_prefix, st.text("0123456789", min_size=12, max_size=12)).map("".join)


@given(valid_chip)
def test_every_15_digit_code_with_a_valid_prefix_is_accepted(chip):
    assert normalise_microchip(chip) == chip


@given(valid_chip, st.lists(st.sampled_from([" ", "-", "."]), min_size=1, max_size=4), st.data())
def test_separators_people_type_are_ignored(chip, separators, data):
    positions = sorted(
        data.draw(st.lists(st.integers(1, 14), min_size=len(separators), max_size=len(separators)))
    )
    typed = list(chip)
    for pos, sep in zip(reversed(positions), separators, strict=True):
        typed.insert(pos, sep)
    assert normalise_microchip("".join(typed)) == chip


@given(st.text("0123456789", min_size=1, max_size=30).filter(lambda s: len(s) != 15))
def test_wrong_length_is_rejected_with_the_count(digits):
    with pytest.raises(InvalidMicrochip, match=f"got {len(digits)}"):
        normalise_microchip(digits)


@given(st.text(min_size=1).filter(lambda s: any(c not in "0123456789 -." for c in s)))
def test_anything_but_digits_is_rejected(text):
    with pytest.raises(InvalidMicrochip):
        normalise_microchip(text)


@pytest.mark.parametrize("prefix", ["000", "999"])
def test_reserved_prefixes_are_rejected(prefix):
    with pytest.raises(InvalidMicrochip, match="reserved"):
        normalise_microchip(prefix + "123456789012")


quantity = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)
price = st.integers(min_value=0, max_value=1_000_000)
rate = st.sampled_from([VAT_HIGH_BP, VAT_LOW_BP, 0])
line = st.tuples(quantity, price, rate)


@given(st.lists(line, min_size=1, max_size=40))
def test_invoice_totals_always_equal_the_sum_of_rounded_lines(lines):
    amounts = [(line_amounts(q, p, r), r) for q, p, r in lines]
    totals = invoice_totals(amounts)
    assert totals.excl_cents == sum(a.excl_cents for a, _ in amounts)
    assert totals.vat_cents == sum(a.vat_cents for a, _ in amounts)
    assert totals.incl_cents == totals.excl_cents + totals.vat_cents
    assert sum(totals.vat_by_rate.values()) == totals.vat_cents
    for a, _ in amounts:
        assert isinstance(a.incl_cents, int)
        assert a.incl_cents == a.excl_cents + a.vat_cents


@given(quantity, price, rate)
def test_line_vat_is_the_rate_of_the_line_rounded_half_up_to_a_cent(q, p, r):
    amounts = line_amounts(q, p, r)
    exact = Decimal(amounts.excl_cents) * r / 10_000
    assert abs(Decimal(amounts.vat_cents) - exact) <= Decimal("0.5")
    assert amounts.excl_cents == round_cents(q * p)


def test_known_dutch_examples():
    assert line_amounts(Decimal(1), 4500, VAT_HIGH_BP).vat_cents == 945  # consult € 45,00 → € 9,45 btw
    assert line_amounts(Decimal(1), 1350, VAT_LOW_BP).vat_cents == 122  # € 1,215 rounds half up to € 1,22
    assert line_amounts(Decimal("0.5"), 3, VAT_HIGH_BP).excl_cents == 2  # 1.5 cents rounds half up
    assert vat_rate_for("medicine") == VAT_LOW_BP
    assert vat_rate_for("service") == VAT_HIGH_BP


def test_floats_and_foreign_rates_are_refused():
    with pytest.raises(TypeError):
        line_amounts(1.5, 100, VAT_HIGH_BP)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a Dutch rate"):
        line_amounts(Decimal(1), 100, 1900)
