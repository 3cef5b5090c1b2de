"""Invoice arithmetic in integer cents with Dutch VAT.

Each line is rounded once (half up, as Dutch invoices do) and the invoice totals are the sums of the rounded
lines — so a printed invoice always adds up. Quantities may be fractional (0.5 tablet strip, 2.35 kg food).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

VAT_HIGH_BP = 2100  # services, food, goods
VAT_LOW_BP = 900  # registered veterinary medicines sold to the animal's owner
VAT_ZERO_BP = 0


def vat_rate_for(product_kind: str) -> int:
    """Default VAT rate for a product kind: medicines at the low rate, everything else at the high rate."""
    return VAT_LOW_BP if product_kind == "medicine" else VAT_HIGH_BP


def round_cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class LineAmounts:
    excl_cents: int
    vat_cents: int
    incl_cents: int


@dataclass(frozen=True)
class InvoiceTotals:
    excl_cents: int
    vat_cents: int
    incl_cents: int
    vat_by_rate: dict[int, int]


def line_amounts(
    quantity: Decimal, unit_price_cents: int, vat_rate_bp: int, discount_cents: int = 0
) -> LineAmounts:
    if vat_rate_bp not in (VAT_HIGH_BP, VAT_LOW_BP, VAT_ZERO_BP):
        raise ValueError(f"VAT rate {vat_rate_bp / 100:.2f}% is not a Dutch rate (21, 9 or 0)")
    if not isinstance(quantity, Decimal):
        raise TypeError("quantity must be a Decimal, never a float")
    excl = round_cents(quantity * unit_price_cents) - discount_cents
    vat = round_cents(Decimal(excl) * vat_rate_bp / Decimal(10_000))
    return LineAmounts(excl_cents=excl, vat_cents=vat, incl_cents=excl + vat)


def invoice_totals(lines: Iterable[tuple[LineAmounts, int]]) -> InvoiceTotals:
    """Totals of ``(line amounts, vat rate)`` pairs: plain sums of the rounded lines, plus VAT per rate."""
    excl = vat = 0
    by_rate: dict[int, int] = {}
    for amounts, rate in lines:
        excl += amounts.excl_cents
        vat += amounts.vat_cents
        by_rate[rate] = by_rate.get(rate, 0) + amounts.vat_cents
    return InvoiceTotals(excl_cents=excl, vat_cents=vat, incl_cents=excl + vat, vat_by_rate=by_rate)
