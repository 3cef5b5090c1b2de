"""Properties of the Animana → warehouse mapping (pure: no database, no HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.animana import models as m
from connectors.animana.mapping import map_items
from connectors.animana.parsing import parse_wire_page
from connectors.animana.resources.animals import SEX_BY_GENDER, map_animal
from connectors.animana.resources.invoices import map_invoice
from connectors.animana.resources.products import map_product
from connectors.animana.resources.values import resource_key
from warehouse.billing.vat import line_amounts
from warehouse.records.prescriptions import Medicine, species_warning
from warehouse.schema.billing import PRODUCT_KINDS, VAT_RATES_BP
from warehouse.schema.clients import SEXES, SPECIES

STAMP = "2026-11-02T12:00:00Z"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
days = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 1, 1))


def wire(resource: str, payload: dict[str, Any]) -> m.WireRecord:
    """The record as the sync gets it: validated from JSON bytes into a wire record (`parsing.parse_wire_page`)."""
    parsed = parse_wire_page(resource, json.dumps({"data": [payload], "next_cursor": None}).encode())
    assert parsed is not None, "not a valid live record"
    return parsed[0][0]


chips = st.one_of(st.none(), st.text(alphabet="0123456789", min_size=15, max_size=15))


@st.composite
def animals(draw: st.DrawFn) -> m.WireRecord:
    born = draw(st.one_of(st.none(), days))
    deceased = draw(st.booleans())
    died = draw(st.one_of(st.none(), days.filter(lambda d: born is None or d >= born))) if deceased else None
    return wire(
        "animals",
        {
            "id": draw(st.integers(1, 10**9)), "updated_at": STAMP,
            "relation_ids": draw(st.lists(st.integers(1, 50), min_size=1, max_size=4)),
            "name": draw(st.text(min_size=1, max_size=30)),
            "species": draw(st.sampled_from([*SPECIES, "axolotl", "stick_insect"])),
            "gender": draw(st.sampled_from(list(SEX_BY_GENDER))), "chip_number": draw(chips),
            "date_of_birth": born.isoformat() if born else None, "deceased": deceased,
            "deceased_on": died.isoformat() if died else None,
        }
    )  # fmt: skip


@given(animals())
def test_any_valid_animal_maps_to_a_patient_row_the_table_accepts(animal: m.WireRecord):
    row, owners, note = map_animal(animal)
    chip = animal["chip_number"]
    base = animal["gender"].removeprefix("neutered_")
    assert row.sex in SEXES
    assert row.sex == (f"{base}_neutered" if animal["gender"].startswith("neutered_") else base)
    assert row.species in SPECIES
    assert row.microchip is None or re.fullmatch(r"[0-9]{15}", row.microchip)
    if chip is not None and row.microchip is None:
        assert note and "microchip" in note  # a dropped chip is always noted
    if chip and chip[:3] not in ("000", "999"):
        assert row.microchip == chip
    assert (
        not row.deceased
        or row.deceased_on is None
        or row.date_of_birth is None
        or row.deceased_on >= row.date_of_birth
    )
    assert len({o.client_animana_id for o in owners}) == len(owners)
    assert [o.is_primary for o in owners].count(True) == 1 and owners[0].is_primary


@st.composite
def invoices(draw: st.DrawFn) -> m.WireRecord:
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        quantity, unit, rate = (
            draw(st.integers(1, 20)),
            draw(st.integers(0, 100_000)),
            draw(st.sampled_from([0, 9, 21])),
        )
        total = quantity * unit
        lines.append({"product_code": "C001", "description": "x", "quantity": quantity, "unit_price_cents": unit,
                      "vat_rate": rate, "line_total_cents": total, "vat_cents": (total * rate + 50) // 100})  # fmt: skip
    excl, vat = sum(x["line_total_cents"] for x in lines), sum(x["vat_cents"] for x in lines)
    return wire(
        "invoices",
        {"id": 7, "updated_at": STAMP, "relation_id": 3, "date": "2026-01-05", "number": "1001-2026-00001",
         "lines": lines, "total_excl_vat_cents": excl, "vat_cents": vat, "total_cents": excl + vat}
    )  # fmt: skip


@given(invoices())
def test_invoice_money_stays_integer_cents_with_dutch_vat_that_adds_up(invoice: m.WireRecord):
    row, lines = map_invoice(invoice)
    assert row.total_incl_cents == row.total_excl_cents + row.vat_cents
    assert sum(x.line_excl_cents for x in lines) == row.total_excl_cents
    assert sum(x.line_vat_cents for x in lines) == row.vat_cents
    for line in lines:
        assert line.vat_rate_bp in VAT_RATES_BP
        assert all(
            isinstance(v, int) for v in (line.unit_price_cents, line.line_excl_cents, line.line_vat_cents)
        )
        assert line.line_incl_cents == line.line_excl_cents + line.line_vat_cents
        # the same half-up rounding as our own invoices
        assert (
            line_amounts(line.quantity, line.unit_price_cents, line.vat_rate_bp).vat_cents
            == line.line_vat_cents
        )


CATEGORIES = ["service", "lab", "vaccine", "medication", "food", "other"]
# Species the warehouse knows, and names it does not (they become "other", as a patient's species does).
species_names = st.sampled_from([*SPECIES, "axolotl", "stick_insect"])
ABSENT = object()


@given(
    category=st.sampled_from(CATEGORIES),
    rate=st.sampled_from([0, 9, 21]),
    price=st.integers(0, 10**7),
    species=st.one_of(st.just(ABSENT), st.none(), st.lists(species_names, max_size=5)),
    patient=species_names,
)
# Found by hypothesis: an article listed for "other" and a patient of a species the warehouse does not know.
@example(category="service", rate=0, price=0, species=["other"], patient="axolotl")
def test_products_map_to_a_kind_species_and_vat_rate_the_price_list_accepts(
    category: str, rate: int, price: int, species: Any, patient: str
):
    payload = {"id": 1, "updated_at": STAMP, "code": "X1", "name": "X", "category": category, "price_cents": price,
               "vat_rate": rate, "active": True}  # fmt: skip
    if species is not ABSENT:
        payload["species"] = species
    row = map_product(wire("products", payload))
    assert row.kind in PRODUCT_KINDS and row.vat_rate_bp in VAT_RATES_BP and row.price_cents == price
    assert (row.kind == "lab") == (category == "lab")  # the marts' lab revenue counts exactly the lab tests
    if not species or species is ABSENT:
        assert row.species is None  # not recorded: no species warning
    else:
        assert row.species and len(set(row.species)) == len(row.species) and set(row.species) <= set(SPECIES)
        assert set(row.species) == {s if s in SPECIES else "other" for s in species}
    # The records' species warning agrees with the price list: none when the article is for any species or for
    # the patient's (a patient's species is mapped by the same rule).
    patient_row, _, _ = map_animal(wire("animals", {
        "id": 2, "updated_at": STAMP, "relation_ids": [1], "name": "P", "species": patient, "gender": "male",
        "deceased": False}))  # fmt: skip
    medicine = Medicine(1, 1, "X1", "X", None, tuple(row.species or ()))

    def mapped(name: str) -> str:
        return name if name in SPECIES else "other"

    # Both sides mapped: a patient of a species the warehouse does not know is "other", and so is an article
    # listed for one (or listed for "other" itself).
    fits = not species or species is ABSENT or mapped(patient) in {mapped(s) for s in species}
    assert (species_warning(medicine, patient_row.species) is None) == fits


def test_staff_and_rooms_never_share_an_animana_id():
    assert resource_key("staff", 3) == "staff:3" and resource_key("room", 3) == "resource:3"
    assert resource_key("equipment", 3) == "resource:3"


def test_a_zero_payment_is_rejected_with_a_reason_and_tombstones_become_deletions():
    payment = wire(
        "payments",
        {
            "id": 5,
            "updated_at": STAMP,
            "invoice_id": 1,
            "method": "pin",
            "amount_cents": 0,
            "date": "2026-01-01",
        },
    )
    tomb = m.Tombstone.model_validate_json('{"id": 6, "updated_at": "2026-11-02T12:00:01Z", "deleted": true}')
    batch = map_items("payments", [payment, tomb])
    assert batch.rows == [] and batch.deleted == ["6"]
    assert batch.rejected[0].external_id == "5" and "zero" in batch.rejected[0].reason
    assert batch.high_water == tomb.updated_at


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31)))
def test_a_day_becomes_the_instant_of_its_midnight_in_amsterdam(day: dt.date):
    """Payments, prescriptions and lab results carry a day; the row holds that day's local midnight (given in UTC,
    the same instant), on both sides of a daylight-saving change."""
    payment = wire(
        "payments",
        {"id": 5, "updated_at": STAMP, "invoice_id": 1, "method": "pin", "amount_cents": 100,
         "date": day.isoformat()},
    )  # fmt: skip
    paid_at = map_items("payments", [payment]).rows[0].paid_at
    assert paid_at == dt.datetime.combine(day, dt.time(0, 0), AMSTERDAM)
    local = paid_at.astimezone(AMSTERDAM)
    assert local.date() == day and local.time() == dt.time(0, 0)


def test_iban_checksum():
    assert m.iban_is_valid("NL91ABNA0417164300") and m.iban_is_valid("GB82WEST12345698765432")
    assert not m.iban_is_valid("NL91ABNA0417164301") and not m.iban_is_valid("NL00INGB0000000001")
