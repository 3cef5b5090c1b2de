"""Where the practice and its clients are: home towns, practice names, e-mail providers and banks."""

from __future__ import annotations

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
