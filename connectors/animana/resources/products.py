"""Animana ``products``: the practice's price list, mirrored into the franchise's ``product`` list and the
practice's ``product_price_override``.

Category → kind (``lab`` stays ``lab``, so the marts report lab revenue); the price list's target species →
``product.species`` by the same species rule as a patient's (so an "alpaca" product fits an "alpaca" patient, both
``other``), each once; no species (absent, null or empty) → NULL: not recorded, no warning. Read whole on every
run; the sync reconciles the overrides against the live list after the stream (`reconcile_products`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from connectors.animana.models import (
    AnimanaRecord,
    DispensingCategory,
    Flag,
    NonEmpty,
    Species,
    VatRate,
    WireRecord,
)
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import vat_bp, warehouse_species
from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.handlers.directory import load_products
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import ProductRow
from warehouse.ingest.animana.tombstones import IGNORED

PRODUCT_KIND_BY_CATEGORY = {
    "service": "service",
    "lab": "lab",
    "vaccine": "medicine",
    "medication": "medicine",
    "food": "food",
    "other": "goods",
}


class Product(AnimanaRecord):
    """An article of the practice's price list. ``category`` "lab" is a laboratory test (priced like a service,
    reported apart). ``species`` are the species the article is registered or made for (a medicine's target
    species, as on its label); absent, null or empty when the price list does not say — then it is for any."""

    code: NonEmpty
    name: NonEmpty
    category: Literal["service", "lab", "vaccine", "medication", "food", "other"]
    price_cents: Annotated[int, Strict(), Field(ge=0)]
    vat_rate: VatRate
    dispensing_category: DispensingCategory | None = None
    species: list[Species] | None = None
    active: Flag


def map_product(p: WireRecord) -> ProductRow:
    species = p["species"]
    return ProductRow(
        p["code"], p["name"], PRODUCT_KIND_BY_CATEGORY[p["category"]], p["price_cents"], vat_bp(p["vat_rate"]),
        p["dispensing_category"], p["active"],
        list(dict.fromkeys(warehouse_species(s) for s in species)) if species else None,
    )  # fmt: skip


SPEC = ResourceSpec(
    name="products",
    model=Product,
    read_row=map_product,
    # The practice's overrides are its mirror: the franchise's list is shared with the other practices.
    load=HandlerLoad(
        handler=load_products, tombstone=IGNORED, mirror=MirrorCount("product_price_override", ())
    ),
)
