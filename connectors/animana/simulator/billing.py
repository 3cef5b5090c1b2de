"""Invoices and payments for the visits that took place, at the price the practice charged on the day."""

from __future__ import annotations

import datetime as dt
import math
import random

from .catalog.products import PRODUCT_BY_CODE
from .clock import AMSTERDAM, ts
from .sampling import weighted
from .world import PracticeWorld, Record


class Billing:
    def __init__(self, world: PracticeWorld) -> None:
        self.world = world
        self.invoice_seq: dict[int, int] = {}  # per year: the last invoice number

    def price_at(self, code: str, day: dt.date) -> int:
        # ~3.5 % yearly price increase, rounded to 5 cents like a real price list.
        years_before = max(0.0, (self.world.anchor_day - day).days / 365.25)
        price = PRODUCT_BY_CODE[code].price_cents / (1.035 ** math.floor(years_before))
        return int(round(price / 5) * 5)

    def invoice(
        self,
        rng: random.Random,
        appointment: Record,
        lines: list[tuple[str, int]],
        day: dt.date,
        closed: dt.datetime,
    ) -> None:
        out_lines = []
        for code, quantity in lines:
            product = PRODUCT_BY_CODE[code]
            unit = self.price_at(code, day)
            total = unit * quantity
            out_lines.append(
                {
                    "product_id": self.world.product_ids[code],
                    "product_code": code,
                    "description": product.name,
                    "quantity": quantity,
                    "unit_price_cents": unit,
                    "vat_rate": product.vat_rate,
                    "line_total_cents": total,
                    "vat_cents": (total * product.vat_rate + 50) // 100,
                }
            )
        self.invoice_seq[day.year] = self.invoice_seq.get(day.year, 0) + 1
        excl = sum(line["line_total_cents"] for line in out_lines)
        vat = sum(line["vat_cents"] for line in out_lines)
        invoice = self.world.add(
            "invoices",
            {
                "updated_at": ts(closed),
                "relation_id": appointment["relation_id"],
                "appointment_id": appointment["id"],
                "date": day.isoformat(),
                "number": f"{self.world.pid}-{day.year}-{self.invoice_seq[day.year]:05d}",
                "lines": out_lines,
                "total_excl_vat_cents": excl,
                "vat_cents": vat,
                "total_cents": excl + vat,
            },
        )
        method = weighted(rng, ["pin", "cash", "transfer", None], [72, 4, 20, 4])
        if method is None:
            return  # unpaid: the debtor list has something to chase
        paid = closed + (
            dt.timedelta(days=rng.randint(3, 30)) if method == "transfer" else dt.timedelta(minutes=2)
        )
        if paid > self.world.anchor:
            return
        self.world.add(
            "payments",
            {
                "updated_at": ts(paid),
                "invoice_id": invoice["id"],
                "relation_id": appointment["relation_id"],
                "method": method,
                "amount_cents": excl + vat,
                "date": paid.astimezone(AMSTERDAM).date().isoformat(),
            },
        )
