"""Static reference data the simulator draws from: species, breeds, reasons for a visit, products, lab panels.

Kept apart from the generator so the generator reads as a story (who comes in, what happens) and this file
as the practice's price list and clinical vocabulary. Values are plausible for a Dutch small-animal
practice; VeNom-style codes are illustrative, not the official VeNom list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# Practice home towns with the first two digits of their postcode area, so addresses look local.
PRACTICE_TOWNS: list[tuple[str, str]] = [
    ("Utrecht", "35"),
    ("Amsterdam", "10"),
    ("Rotterdam", "30"),
    ("Den Haag", "25"),
    ("Eindhoven", "56"),
    ("Groningen", "97"),
    ("Nijmegen", "65"),
    ("Zwolle", "80"),
    ("Haarlem", "20"),
    ("Arnhem", "68"),
    ("Leiden", "23"),
    ("Breda", "48"),
    ("Tilburg", "50"),
    ("Maastricht", "62"),
    ("Amersfoort", "38"),
    ("Apeldoorn", "73"),
    ("Deventer", "74"),
    ("Enschede", "75"),
    ("Leeuwarden", "89"),
    ("'s-Hertogenbosch", "52"),
]
PRACTICE_PREFIXES = ["Dierenkliniek", "Dierenartsenpraktijk", "Dierenziekenhuis", "Dierenartspraktijk"]
PRACTICE_SUFFIXES = [
    "Centrum",
    "Oost",
    "West",
    "Noord",
    "Zuid",
    "De Linde",
    "Het Park",
    "De Vecht",
    "Aan de Maas",
]

EMAIL_DOMAINS = [
    "gmail.com",
    "hotmail.com",
    "ziggo.nl",
    "kpnmail.nl",
    "outlook.com",
    "live.nl",
    "planet.nl",
    "xs4all.nl",
]
BANK_CODES = ["ABNA", "INGB", "RABO", "SNSB", "TRIO", "ASNB", "KNAB", "BUNQ"]

# (species, weight in the patient mix, visit-frequency factor, adult weight range kg, lifespan years)
SPECIES: list[tuple[str, float, float, tuple[float, float], int]] = [
    ("dog", 45, 1.3, (3.0, 45.0), 14),
    ("cat", 38, 1.0, (3.0, 7.0), 17),
    ("rabbit", 7, 0.7, (1.2, 5.5), 9),
    ("guinea_pig", 3, 0.5, (0.7, 1.2), 6),
    ("bird", 2, 0.4, (0.03, 0.6), 10),
    ("horse", 2, 0.8, (250.0, 650.0), 28),
    ("ferret", 1.5, 0.8, (0.6, 2.0), 8),
    ("reptile", 1.5, 0.5, (0.1, 0.6), 12),
]
BREEDS: dict[str, list[str]] = {
    "dog": [
        "Labrador Retriever",
        "Golden Retriever",
        "Franse Bulldog",
        "Border Collie",
        "Jack Russell Terriër",
        "Kooikerhondje",
        "Duitse Herder",
        "Chihuahua",
        "Beagle",
        "Teckel",
        "Cavalier King Charles Spaniel",
        "Labradoodle",
        "Stabyhoun",
        "Australian Shepherd",
        "Mix",
    ],
    "cat": [
        "Europese Korthaar",
        "Britse Korthaar",
        "Maine Coon",
        "Ragdoll",
        "Noorse Boskat",
        "Siamees",
        "Perzische kat",
        "Mix",
    ],
    "rabbit": ["Hollander", "Vlaamse Reus", "Dwergkonijn", "Lotharinger", "Mix"],
    "guinea_pig": ["Gladhaar", "Rex", "Teddy", "Abessijn"],
    "bird": ["Grasparkiet", "Valkparkiet", "Agapornis", "Kanarie"],
    "horse": ["KWPN", "Fries", "Shetlander", "Haflinger", "Welsh pony"],
    "ferret": ["Fret"],
    "reptile": ["Baardagame", "Luipaardgekko"],
}
PET_NAMES = [
    "Max",
    "Bella",
    "Luna",
    "Charlie",
    "Buddy",
    "Pip",
    "Guus",
    "Sam",
    "Lola",
    "Bobby",
    "Saar",
    "Noor",
    "Loki",
    "Simba",
    "Tijger",
    "Minoes",
    "Kees",
    "Joep",
    "Dikkie",
    "Snuf",
    "Bo",
    "Teddy",
    "Rocky",
    "Milo",
    "Oscar",
    "Nala",
    "Lucky",
    "Diesel",
    "Binky",
    "Flappie",
    "Stampertje",
    "Bruno",
    "Sientje",
    "Toby",
    "Moos",
    "Pien",
    "Fenna",
    "Kiki",
    "Lotje",
    "Dexter",
    "Jack",
    "Storm",
    "Sky",
    "Coco",
    "Bram",
    "Floor",
    "Wodan",
    "Vos",
]
COLOURS = [
    "zwart",
    "wit",
    "bruin",
    "rood",
    "cyperse",
    "lapjes",
    "zwart-wit",
    "grijs",
    "blond",
    "tricolor",
    "crème",
]

# Chip country codes (ISO 3166 numeric) and manufacturer codes (900-998); mostly Dutch animals.
CHIP_PREFIXES: list[tuple[str, float]] = [
    ("528", 85),
    ("276", 5),
    ("056", 3),
    ("250", 2),
    ("981", 3),
    ("900", 2),
]


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


class Diagnosis(NamedTuple):
    text: str
    venom_code: str | None
    species: tuple[str, ...] = ()  # empty = any species the reason applies to
    prescriptions: tuple[str, ...] | None = None  # None = the reason's own


@dataclass(frozen=True)
class Reason:
    """Why a patient comes in and what tends to follow from it.

    ``prescriptions`` and ``services`` may list alternatives for different species (Metacam for dogs, for cats,
    for horses); a visit uses those that fit the patient, so a horse never leaves with a dog's medicine."""

    text: str
    appointment_type: str
    weight: float
    diagnoses: list[Diagnosis]
    soap: tuple[str, str, str, str]
    follow_up_days: int | None = None
    lab_probability: float = 0.0
    prescriptions: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=lambda: ["C001"])
    species: tuple[str, ...] = ()  # empty = any
    min_age_years: float = 0.0
    needs_room: str | None = None
    sex: str | None = None  # neutering: only intact animals of this sex


REASONS: list[Reason] = [
    Reason(
        "jaarlijkse vaccinatie",
        "vaccinatie",
        26,
        [Diagnosis("gezond, vaccinatie", None)],
        (
            "Komt voor jaarlijkse vaccinatie, eigenaar meldt geen bijzonderheden.",
            "Alert, goede voedingstoestand, hart en longen ausc. z.b.",
            "Klinisch gezond.",
            "Vaccinatie gegeven, volgende over een jaar.",
        ),
        services=["C001"],
        species=tuple(VACCINES_BY_SPECIES),
    ),
    Reason(
        "oorontsteking",
        "consult",
        9,
        [Diagnosis("otitis externa", "1081")],
        (
            "Schudt veel met de kop, krabt aan het oor.",
            "Oor rood en gezwollen, bruin exsudaat.",
            "Otitis externa.",
            "Oor schoongemaakt, oordruppels mee, controle over 2 weken.",
        ),
        follow_up_days=14,
        prescriptions=["M004"],
        species=("dog", "cat"),
    ),
    Reason(
        "braken en diarree",
        "consult",
        9,
        [Diagnosis("gastro-enteritis", "1420")],
        (
            "Sinds twee dagen braken en dunne ontlasting, eet slecht.",
            "Buik licht gespannen, T 39,2.",
            "Acute gastro-enteritis.",
            "Licht verteerbaar dieet, pasta mee, terug bij verergering.",
        ),
        lab_probability=0.25,
        prescriptions=["M005"],
    ),
    Reason(
        "jeuk",
        "consult",
        8,
        [Diagnosis("atopische dermatitis", "1203"), Diagnosis("vlooienallergie", "1210")],
        (
            "Krabt en likt veel, vooral aan de poten.",
            "Erytheem op buik en tussen de tenen.",
            "Vermoedelijk atopie.",
            "Apoquel gestart, vlooienbehandeling, controle over 3 weken.",
        ),
        follow_up_days=21,
        prescriptions=["M002", "M007"],
        species=("dog",),
    ),
    Reason(
        "kreupel",
        "consult",
        7,
        [Diagnosis("kreupelheid", "1601"), Diagnosis("artrose", "1615")],
        (
            "Loopt sinds gisteren kreupel rechtsachter.",
            "Pijn bij flexie knie, geen zwelling.",
            "Verdenking distorsie, DD kruisband.",
            "Pijnstilling, rust, controle over 10 dagen.",
        ),
        follow_up_days=10,
        prescriptions=["M001", "M016", "M015"],
        services=["C001", "C013"],
        species=("dog", "cat", "horse"),
    ),
    Reason(
        "veel drinken en plassen",
        "consult",
        5,
        [
            Diagnosis("chronische nierinsufficiëntie", "1740", prescriptions=("M012",)),
            Diagnosis("hyperthyreoïdie", "1505", species=("cat",), prescriptions=("M013",)),
            Diagnosis("diabetes mellitus", "1502", prescriptions=("M017",)),
        ],
        (
            "Drinkt veel meer dan normaal, valt af.",
            "Mager, vacht dof, nieren klein bij palpatie.",
            "PU/PD, bloedonderzoek ingezet.",
            "Bloed afgenomen, bellen met uitslag.",
        ),
        follow_up_days=7,
        lab_probability=0.9,
        services=["C001", "C014"],
        species=("cat", "dog"),
        min_age_years=7,
    ),
    Reason(
        "senior check",
        "consult",
        5,
        [Diagnosis("gezond, senior", None), Diagnosis("tandsteen", "1302")],
        (
            "Jaarlijkse seniorencontrole.",
            "Lichte tandsteen, hartgeruis graad 1/6.",
            "Ouder dier, stabiel.",
            "Bloedonderzoek, volgende controle over 6 maanden.",
        ),
        lab_probability=0.6,
        services=["C001", "C014"],
        min_age_years=8,
    ),
    Reason(
        "wondje",
        "consult",
        5,
        [Diagnosis("bijtwond", "1230"), Diagnosis("abces", "1225")],
        (
            "Wondje na vechtpartij.",
            "Abces van 2 cm aan de flank, warm.",
            "Bijtwondabces.",
            "Gespoeld, antibiotica, controle over 10 dagen.",
        ),
        follow_up_days=10,
        prescriptions=["M003", "M018"],
        species=("cat", "dog", "rabbit"),
    ),
    Reason(
        "castratie",
        "operatie",
        4,
        [Diagnosis("castratie", None)],
        (
            "Opgenomen voor castratie, nuchter.",
            "Klinisch gezond voor narcose.",
            "ASA 1.",
            "Castratie zonder complicaties, hechtingen controle na 10 dagen.",
        ),
        follow_up_days=10,
        prescriptions=["M001", "M016"],
        services=["C010", "C017", "C018"],
        species=("dog", "cat", "rabbit"),
        min_age_years=0.5,
        needs_room="operating",
        sex="male",
    ),
    Reason(
        "sterilisatie",
        "operatie",
        3,
        [Diagnosis("ovariëctomie", None)],
        (
            "Opgenomen voor sterilisatie, nuchter.",
            "Klinisch gezond voor narcose.",
            "ASA 1.",
            "Ovariëctomie zonder complicaties, kraag mee, hechtingen controle na 10 dagen.",
        ),
        follow_up_days=10,
        prescriptions=["M001", "M016"],
        services=["C011", "C019", "O001"],
        species=("dog", "cat"),
        min_age_years=0.5,
        needs_room="operating",
        sex="female",
    ),
    Reason(
        "gebitsbehandeling",
        "gebitsbehandeling",
        3,
        [Diagnosis("parodontitis", "1305")],
        (
            "Stinkende adem, kauwt aan één kant.",
            "Veel tandsteen, gingivitis, twee losse kiezen.",
            "Parodontitis graad 3.",
            "Gebitssanering en extracties onder narcose.",
        ),
        prescriptions=["M001", "M016"],
        services=["C012"],
        species=("dog", "cat"),
        min_age_years=3,
        needs_room="operating",
    ),
    Reason(
        "hoesten",
        "consult",
        3,
        [Diagnosis("kennelhoest", "1801")],
        (
            "Hoest sinds een paar dagen, vooral 's nachts.",
            "Hoest opwekbaar bij trachea-palpatie.",
            "Kennelhoest.",
            "Doxycycline, rust, terug als koorts.",
        ),
        prescriptions=["M009"],
        species=("dog",),
    ),
    Reason(
        "oogontsteking",
        "consult",
        3,
        [Diagnosis("conjunctivitis", "1901")],
        (
            "Oog tranen en knijpen.",
            "Conjunctiva rood, fluorescine negatief.",
            "Conjunctivitis.",
            "Oogdruppels, controle bij geen verbetering.",
        ),
        prescriptions=["M008"],
    ),
    Reason(
        "hartgeruis",
        "consult",
        2,
        [Diagnosis("mitralisklependegeneratie", "1702")],
        (
            "Sneller moe tijdens wandelen.",
            "Hartgeruis graad 3/6 links.",
            "MMVD stadium B2.",
            "Vetmedin gestart, echo gepland.",
        ),
        follow_up_days=30,
        prescriptions=["M011"],
        species=("dog",),
        min_age_years=6,
    ),
    Reason(
        "nagels knippen",
        "consult",
        3,
        [Diagnosis("nagelverzorging", None)],
        ("Nagels te lang.", "Nagels geknipt.", "Geen bijzonderheden.", "Over 6 weken opnieuw."),
        services=["C016"],
        species=("rabbit", "guinea_pig", "bird", "dog"),
    ),
    Reason(
        "gewichtsverlies",
        "consult",
        3,
        [Diagnosis("gewichtsverlies e.c.i.", "1503")],
        (
            "Valt af ondanks goede eetlust.",
            "Gewicht 10% lager dan vorig jaar.",
            "Gewichtsverlies, DD hyperthyreoïdie.",
            "Bloedonderzoek, dieetadvies.",
        ),
        lab_probability=0.8,
        services=["C001", "C014"],
        species=("cat", "dog"),
        min_age_years=5,
    ),
]
REASON_BY_TEXT = {r.text: r for r in REASONS}
FOLLOW_UP = Reason(
    "controle",
    "controle",
    0,
    [Diagnosis("controle, herstellend", None)],
    ("Komt voor controle.", "Herstel verloopt goed.", "Herstellend.", "Geen verdere controle nodig."),
    services=["C002"],
)
EUTHANASIA = Reason(
    "euthanasie",
    "euthanasie",
    0,
    [Diagnosis("euthanasie", None)],
    (
        "Kwaliteit van leven sterk verminderd.",
        "Ernstig vermagerd, apathisch.",
        "Slechte prognose.",
        "Euthanasie in overleg met eigenaar.",
    ),
    services=["C015"],
)

APPOINTMENT_MINUTES = {
    "consult": 15,
    "vaccinatie": 15,
    "controle": 10,
    "operatie": 90,
    "gebitsbehandeling": 60,
    "euthanasie": 30,
}

# Lab tests: code, name, unit, reference ranges per species group (dog/other, cat).
LAB_TESTS: list[tuple[str, str, str, tuple[float, float], tuple[float, float]]] = [
    ("ALT", "Alanine-aminotransferase", "U/L", (10, 125), (12, 130)),
    ("ALKP", "Alkalische fosfatase", "U/L", (23, 212), (14, 111)),
    ("CREA", "Creatinine", "umol/L", (44, 159), (71, 212)),
    ("UREA", "Ureum", "mmol/L", (2.5, 9.6), (5.7, 12.9)),
    ("GLU", "Glucose", "mmol/L", (4.1, 7.9), (4.1, 8.8)),
    ("TP", "Totaal eiwit", "g/L", (52, 82), (57, 89)),
    ("HCT", "Hematocriet", "%", (37, 55), (30, 45)),
    ("T4", "Totaal T4", "nmol/L", (13, 51), (10, 50)),
]

STAFF_ROLES = [("vet", 0.45), ("nurse", 0.35), ("receptionist", 0.2)]
