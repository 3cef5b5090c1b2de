"""The clinical vocabulary: why a patient comes in, what is found and what follows; appointment lengths; the
in-house lab panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .products import VACCINES_BY_SPECIES


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
