"""Dutch names and address parts: the pools people are drawn from, e-mail slugs and valid IBANs."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from faker import Faker

from .catalog.places import BANK_CODES


@dataclass(frozen=True)
class NamePools:
    """A practice's own pools, so staff and clients of one practice share surnames, streets and towns."""

    male_names: list[str]
    female_names: list[str]
    last_names: list[str]
    streets: list[str]
    other_towns: list[str]


def name_pools(seed: int, practice_id: int) -> NamePools:
    fake = Faker("nl_NL")
    fake.seed_instance(f"{seed}:{practice_id}:names")
    return NamePools(
        male_names=[fake.first_name_male() for _ in range(120)],
        female_names=[fake.first_name_female() for _ in range(120)],
        last_names=[fake.last_name() for _ in range(250)],
        streets=[fake.street_name() for _ in range(80)],
        other_towns=[fake.city() for _ in range(25)],
    )


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_text.lower())


def iban(rng: random.Random) -> str:
    bank = rng.choice(BANK_CODES)
    account = f"{rng.randrange(10**10):010d}"
    # ISO 13616 check digits: move "NL00" to the end, letters to numbers, 98 - (n mod 97).
    digits = "".join(str(int(ch, 36)) for ch in bank + account + "NL00")
    check = 98 - int(digits) % 97
    return f"NL{check:02d}{bank}{account}"
