"""The practice's price list: services, lab work, vaccines (with their booster intervals), medicines, food."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    category: str  # service | lab | vaccine | medication | food | other
    price_cents: int  # excluding VAT
    vat_rate: int  # 21 (standard) or 9 (reduced, e.g. pet food)
    dispensing_category: str | None = None  # VRIJ/URA/UDA/UDD for medicines
    species: tuple[str, ...] = ()  # the species it is registered or made for; empty = any
    usage: str = ""  # a medicine's instructions on the label: ear drops go in ears, tablets with food


def fits(product: Product, species: str) -> bool:
    return not product.species or species in product.species


DOG_CAT = ("dog", "cat")

PRODUCTS: list[Product] = [
    Product("C001", "Consult", "service", 4350, 21),
    Product("C002", "Herhaalconsult / controle", "service", 2900, 21),
    Product("C003", "Spoedconsult buiten kantoortijd", "service", 11500, 21),
    Product("C010", "Castratie reu", "service", 24500, 21, species=("dog",)),
    Product("C011", "Sterilisatie poes", "service", 17900, 21, species=("cat",)),
    Product("C012", "Gebitsbehandeling onder narcose", "service", 29500, 21),
    Product("C013", "Röntgenfoto", "service", 8900, 21),
    Product("C014", "Laboratoriumonderzoek bloed", "lab", 9800, 21),
    Product("C015", "Euthanasie", "service", 12500, 21),
    Product("C016", "Nagels knippen", "service", 1250, 21),
    Product("C017", "Castratie kater", "service", 9500, 21, species=("cat",)),
    Product("C018", "Castratie konijn", "service", 8500, 21, species=("rabbit",)),
    Product("C019", "Sterilisatie teef", "service", 39500, 21, species=("dog",)),
    Product("V001", "Nobivac DHPPi", "vaccine", 2850, 21, "UDD", species=("dog", "ferret")),
    Product("V002", "Nobivac L4", "vaccine", 2650, 21, "UDD", species=("dog",)),
    Product("V003", "Nobivac Rabies", "vaccine", 2450, 21, "UDD", species=("dog", "cat", "ferret")),
    Product("V004", "Nobivac KC", "vaccine", 3150, 21, "UDD", species=("dog",)),
    Product("V005", "Purevax RCP", "vaccine", 3050, 21, "UDD", species=("cat",)),
    Product("V006", "Nobivac Myxo-RHD Plus", "vaccine", 3350, 21, "UDD", species=("rabbit",)),
    Product("V007", "Equilis Prequenza Te", "vaccine", 4150, 21, "UDD", species=("horse",)),
    Product("M001", "Metacam 1,5 mg/ml suspensie hond 10 ml", "medication", 1895, 21, "UDA", ("dog",),
            "1x daags op het eten, dosis volgens gewicht"),
    Product("M002", "Apoquel 16 mg 20 tabletten", "medication", 5490, 21, "UDA", ("dog",),
            "2x daags 1 tablet, na 14 dagen 1x daags"),
    Product("M003", "Synulox 250 mg 10 tabletten", "medication", 2275, 21, "UDA", DOG_CAT,
            "2x daags 1 tablet met het eten, 7 dagen"),
    Product("M004", "Surolan oordruppels 15 ml", "medication", 1750, 21, "UDA", DOG_CAT,
            "2x daags 5 druppels in het aangedane oor, 7 dagen"),
    Product("M005", "Canikur Pro pasta 15 ml", "medication", 1495, 21, "VRIJ", DOG_CAT,
            "3x daags pasta in de bek, 3 dagen"),
    Product("M006", "Milbemax ontworming hond 2 tabletten", "medication", 1295, 21, "URA", ("dog",),
            "eenmalig 1 tablet met het eten"),
    Product("M007", "Bravecto 500 mg kauwtablet", "medication", 4295, 21, "URA", ("dog",),
            "eenmalig 1 kauwtablet met het eten, werkt 12 weken"),
    Product("M008", "Isathal oogdruppels 5 g", "medication", 1650, 21, "UDA", DOG_CAT,
            "2x daags 1 druppel in het aangedane oog, 7 dagen"),
    Product("M009", "Doxycycline 100 mg 10 tabletten", "medication", 1390, 21, "UDA", DOG_CAT,
            "1x daags 1 tablet met het eten, 10 dagen"),
    Product("M010", "Frontline Spot On kat 3 pipetten", "medication", 2195, 21, "VRIJ", ("cat",),
            "1 pipet in de nek, elke 4 weken"),
    Product("M011", "Vetmedin 5 mg 50 tabletten", "medication", 6990, 21, "UDA", ("dog",),
            "2x daags 1 tablet, een uur voor het eten"),
    Product("M012", "Semintra 4 mg/ml 35 ml", "medication", 5450, 21, "UDA", ("cat",),
            "1x daags in de bek of op het eten, dosis volgens gewicht"),
    Product("M013", "Thiamazol 2,5 mg 100 tabletten", "medication", 3295, 21, "UDA", ("cat",),
            "2x daags 1 tablet"),
    Product("M014", "Methadon 10 mg/ml 10 ml", "medication", 2450, 21, "UDD", DOG_CAT,
            "alleen toediening in de praktijk"),
    Product("M015", "Metacam 15 mg/ml suspensie paard 100 ml", "medication", 6450, 21, "UDA", ("horse",),
            "1x daags over het krachtvoer, dosis volgens gewicht, 5 dagen"),
    Product("M016", "Metacam 0,5 mg/ml suspensie kat 15 ml", "medication", 1695, 21, "UDA", ("cat",),
            "1x daags op het eten, dosis volgens gewicht"),
    Product("M017", "Caninsulin 40 IE/ml 10 ml", "medication", 3850, 21, "UDA", DOG_CAT,
            "2x daags onderhuids na het eten, dosis volgens schema"),
    Product("M018", "Baytril 2,5% orale oplossing 50 ml", "medication", 1850, 21, "UDA",
            ("rabbit", "guinea_pig", "ferret"), "1x daags in de bek, dosis volgens gewicht, 7 dagen"),
    Product("F001", "Royal Canin Renal kat 2 kg", "food", 3495, 9, species=("cat",)),
    Product("F002", "Hill's i/d hond 4 kg", "food", 3895, 9, species=("dog",)),
    Product("F003", "Specific CGD Senior Care 2 kg", "food", 2950, 9, species=("dog",)),
    Product("O001", "Kraag (Buster) 20 cm", "other", 895, 21, species=DOG_CAT),
]  # fmt: skip
PRODUCT_BY_CODE = {p.code: p for p in PRODUCTS}

VACCINES_BY_SPECIES: dict[str, list[tuple[str, int]]] = {
    # product code, months until the booster is due
    "dog": [("V001", 36), ("V002", 12), ("V004", 12)],
    "cat": [("V005", 12)],
    "rabbit": [("V006", 12)],
    "horse": [("V007", 12)],
    "ferret": [("V001", 12)],
}
