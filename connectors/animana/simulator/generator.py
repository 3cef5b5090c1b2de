"""Deterministic generation of one practice's Animana data.

Everything is derived from ``(seed, practice_id, stream)`` RNGs, so a practice's data does not depend on
which practice or resource was requested first, and a practice that was evicted from the cache comes back
byte-identical. A practice is generated as a whole (resources reference each other: consults come from
done appointments, invoices from consults, boosters from vaccinations), but only one practice at a time.

The story per practice: a client base (relations) with pets (animals); a day-by-day agenda with weekday
and seasonal patterns, up to six weeks past the anchor ("now"); new visits (phoned in, or walk-ins booked
at the desk), follow-ups and vaccination boosters planned from earlier visits; reception books the vet with
the fewest patients that day; no-shows that get likelier with lead time and with the client's own habits;
consults, prescriptions, lab results, invoices and payments following from appointments that took place,
with products that fit the patient's species. The anchor's day is always a working day in progress: what
started before the anchor was seen (or not), what comes after is booked, and only what was booked by then.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from faker import Faker

from connectors.animana.resources.registry import RESOURCE_ORDER

from . import catalog as c
from .clock import AMSTERDAM, TS_FORMAT, UTC, ts
from .reminders import generate_reminders
from .shifts import generate_shifts

# 2026-11-02 is a Monday; a fixed default keeps a seed's data identical from one day to the next (tests, benches).
# The demo passes the moment it was first started instead, so its "today" is a working day in progress.
DEFAULT_ANCHOR = dt.datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

Record = dict[str, Any]

VET_DAY_CAPACITY = 24  # patients a vet sees at most in a day: the rest of the shift is phone, surgery, notes
WALK_IN_SHARE = 0.12  # of the visits nobody planned: the client walks in and is booked at the desk
SAME_DAY_CALL_MINUTES = 30  # mean wait after opening before a same-day appointment is phoned in
NO_SHOW_AFTER = dt.timedelta(minutes=15)  # how long reception waits before marking a no-show
AGENDA_HORIZON = dt.timedelta(days=42)  # how far past the anchor day the agenda (and the roster) reaches


@dataclass(frozen=True)
class Scale:
    relations: int
    appointments_per_day: float
    staff: int
    rooms: int


# small: a few hundred rows per practice (tests); demo: a two-vet practice at work, 15-25 patients per vet-day
# (~150k rows over three years); medium: ~100k rows per practice; large: ~5x medium.
SCALES: dict[str, Scale] = {
    "small": Scale(relations=20, appointments_per_day=0.08, staff=5, rooms=3),
    "demo": Scale(relations=2000, appointments_per_day=28, staff=5, rooms=3),
    "medium": Scale(relations=2700, appointments_per_day=14.5, staff=12, rooms=6),
    "large": Scale(relations=10000, appointments_per_day=52.0, staff=40, rooms=12),
}


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 42
    scale: str = "small"
    history_years: float = 3.0
    anchor: dt.datetime = DEFAULT_ANCHOR

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {sorted(SCALES)}")
        if self.anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")


def practice_ids(count: int) -> list[int]:
    return [1001 + i for i in range(count)]


def practice_info(seed: int, practice_id: int) -> Record:
    rng = random.Random(f"{seed}:{practice_id}:practice")
    town, _ = rng.choice(c.PRACTICE_TOWNS)
    name = f"{rng.choice(c.PRACTICE_PREFIXES)} {town} {rng.choice(c.PRACTICE_SUFFIXES)}"
    return {"id": practice_id, "name": name, "city": town, "country": "NL", "timezone": "Europe/Amsterdam"}


def generate_practice(config: GeneratorConfig, practice_id: int) -> dict[str, list[Record]]:
    return _PracticeGenerator(config, practice_id).run()


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_text.lower())


def _iban(rng: random.Random) -> str:
    bank = rng.choice(c.BANK_CODES)
    account = f"{rng.randrange(10**10):010d}"
    # ISO 13616 check digits: move "NL00" to the end, letters to numbers, 98 - (n mod 97).
    digits = "".join(str(int(ch, 36)) for ch in bank + account + "NL00")
    check = 98 - int(digits) % 97
    return f"NL{check:02d}{bank}{account}"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # Knuth's method underflows for large lambda; the normal approximation is fine there.
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _weighted(rng: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


class _PracticeGenerator:
    def __init__(self, config: GeneratorConfig, practice_id: int) -> None:
        self.config = config
        self.pid = practice_id
        self.scale = SCALES[config.scale]
        # The anchor is "now": it decides what has happened yet (booked, seen, paid). Everything else hangs off
        # the start of the anchor day, so a given day's world is the same whatever time the demo starts.
        self.anchor = config.anchor
        self.anchor_day = config.anchor.astimezone(AMSTERDAM).date()
        self.day_start = dt.datetime.combine(self.anchor_day, dt.time(0), AMSTERDAM)
        self.start = self.day_start - dt.timedelta(days=round(365.25 * config.history_years))
        info_rng = random.Random(f"{config.seed}:{practice_id}:practice")
        self.town, self.pc2 = info_rng.choice(c.PRACTICE_TOWNS)
        # A list for every resource the specs declare: the simulator serves each (empty until generated here).
        self.out: dict[str, list[Record]] = {name: [] for name in RESOURCE_ORDER}
        # Hidden state that shapes behaviour but is not part of any payload.
        self.no_show_propensity: dict[int, float] = {}
        self.no_show_history: dict[int, int] = {}
        self.adult_weight: dict[int, float] = {}
        self.vaccine_due: dict[int, dict[str, dt.date]] = {}  # per animal: vaccine code -> next due day

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.config.seed}:{self.pid}:{stream}")

    def add(self, resource: str, record: Record) -> Record:
        record = {"id": len(self.out[resource]) + 1, **record, "deleted": False}
        self.out[resource].append(record)
        return record

    def run(self) -> dict[str, list[Record]]:
        self._name_pools()
        self._staff()
        self._rooms()
        self._products()
        self._relations()
        self._animals()
        self._agenda()
        self._shifts_and_reminders()
        return self.out

    # -- reference data --------------------------------------------------------------------------------
    def _name_pools(self) -> None:
        fake = Faker("nl_NL")
        fake.seed_instance(f"{self.config.seed}:{self.pid}:names")
        self.male_names = [fake.first_name_male() for _ in range(120)]
        self.female_names = [fake.first_name_female() for _ in range(120)]
        self.last_names = [fake.last_name() for _ in range(250)]
        self.streets = [fake.street_name() for _ in range(80)]
        self.other_towns = [fake.city() for _ in range(25)]

    def _staff(self) -> None:
        rng = self.rng("staff")
        n = self.scale.staff
        n_vets = max(2, round(n * 0.45))
        n_nurses = max(1, round(n * 0.35))
        roles = ["vet"] * n_vets + ["nurse"] * n_nurses + ["receptionist"] * (n - n_vets - n_nurses)
        domain = _slug(self.town) + "-dierenarts.nl"
        for role in roles:
            female = rng.random() < 0.7  # the Dutch veterinary workforce is mostly female
            first = rng.choice(self.female_names if female else self.male_names)
            last = rng.choice(self.last_names)
            created = self.start - dt.timedelta(days=rng.randint(30, 4000))
            self.add(
                "staff",
                {
                    "updated_at": ts(created),
                    "created_at": ts(created),
                    "role": role,
                    "first_name": first,
                    "last_name": last,
                    "initials": first[0] + ".",
                    "email": f"{_slug(first)}@{domain}",
                    "active": True,
                },
            )
        # One colleague left during the history window: realistic for syncs (active flips to false).
        leaver = self.out["staff"][-1]
        leaver["active"] = False
        leaver["updated_at"] = ts(self.start + (self.day_start - self.start) * rng.uniform(0.3, 0.9))
        self.vets = [s for s in self.out["staff"] if s["role"] == "vet" and s["active"]]

    def _rooms(self) -> None:
        rng = self.rng("resources")
        names = [("Operatiekamer", "room", "operating")]
        names += [(f"Spreekkamer {i}", "room", "consult") for i in range(1, max(2, self.scale.rooms - 2) + 1)]
        if self.scale.rooms > 3:
            names += [("Röntgen", "equipment", "imaging"), ("Echo", "equipment", "imaging")]
        for name, kind, purpose in names[: max(self.scale.rooms, 3)]:
            created = self.start - dt.timedelta(days=rng.randint(100, 3000))
            self.add(
                "resources",
                {"updated_at": ts(created), "name": name, "kind": kind, "purpose": purpose, "active": True},
            )
        self.operating_room = self.out["resources"][0]

    def _products(self) -> None:
        rng = self.rng("products")
        for product in c.PRODUCTS:
            # Prices are revised once a year; the last revision is somewhere in the past year.
            changed = self.day_start - dt.timedelta(days=rng.randint(5, 360), seconds=rng.randint(0, 86399))
            self.add(
                "products",
                {
                    "updated_at": ts(changed),
                    "code": product.code,
                    "name": product.name,
                    "category": product.category,
                    "price_cents": product.price_cents,
                    "vat_rate": product.vat_rate,
                    "dispensing_category": product.dispensing_category,
                    # The target species of the article (as on a medicine's label); null: any species.
                    "species": list(product.species) or None,
                    "active": True,
                },
            )
        self.product_ids = {p["code"]: p["id"] for p in self.out["products"]}

    def price_at(self, code: str, day: dt.date) -> int:
        # ~3.5 % yearly price increase, rounded to 5 cents like a real price list.
        years_before = max(0.0, (self.anchor_day - day).days / 365.25)
        price = c.PRODUCT_BY_CODE[code].price_cents / (1.035 ** math.floor(years_before))
        return int(round(price / 5) * 5)

    # -- clients and patients --------------------------------------------------------------------------
    def _relations(self) -> None:
        rng = self.rng("relations")
        history = self.day_start - self.start
        for _ in range(self.scale.relations):
            if rng.random() < 0.55:  # long-standing clients registered before the history window
                created = self.start - dt.timedelta(days=rng.randint(1, 3650), seconds=rng.randint(0, 86399))
            else:
                created = self.start + history * rng.random() * 0.97
            female = rng.random() < 0.6
            first = rng.choice(self.female_names if female else self.male_names)
            last = rng.choice(self.last_names)
            initials = first[0] + "." + (rng.choice("ACEHJMPW") + "." if rng.random() < 0.35 else "")
            title = ("mevr." if female else "dhr.") if rng.random() < 0.88 else None
            house = str(rng.randint(1, 240)) + (
                rng.choice(["A", "B", "-2", "bis"]) if rng.random() < 0.08 else ""
            )
            local = rng.random() < 0.8
            area = self.pc2 if local else f"{rng.randint(10, 99)}"
            letters = rng.choice("ABCDEGHJKLMNPRTVWXZ") + rng.choice("ABCDEGHJKLMNPRTVWXZ")
            postcode = f"{area}{rng.randint(0, 99):02d} {letters}"
            email = None
            if rng.random() < 0.9:
                suffix = str(rng.randint(1, 99)) if rng.random() < 0.3 else ""
                email = f"{_slug(first)}.{_slug(last)}{suffix}@{rng.choice(c.EMAIL_DOMAINS)}"
            if rng.random() < 0.75:
                phone = f"06-{rng.randint(10000000, 99999999)}"
            else:
                phone = f"0{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}"
            updated = created + (self.day_start - created) * rng.random() if rng.random() < 0.35 else created
            record = self.add(
                "relations",
                {
                    "updated_at": ts(updated),
                    "created_at": ts(created),
                    "title": title,
                    "initials": initials,
                    "first_name": first,
                    "last_name": last,
                    "street": rng.choice(self.streets),
                    "house_number": house,
                    "postcode": postcode,
                    "city": self.town if local else rng.choice(self.other_towns),
                    "email": email,
                    "phone": phone,
                    "iban": _iban(rng) if rng.random() < 0.8 else None,
                    "active": True,
                },
            )
            # Most clients always show up; a minority are unreliable.
            self.no_show_propensity[record["id"]] = _weighted(rng, [0.0, 0.03, 0.12], [70, 20, 10])

    def _animals(self) -> None:
        rng = self.rng("animals")
        relations = self.out["relations"]
        species_names = [s[0] for s in c.SPECIES]
        species_weights = [s[1] for s in c.SPECIES]
        species_info = {s[0]: s for s in c.SPECIES}
        for relation in relations:
            created = dt.datetime.strptime(relation["created_at"], TS_FORMAT).replace(tzinfo=UTC)
            n_pets = _weighted(rng, [1, 2, 3, 4], [60, 25, 10, 5])
            for _ in range(n_pets):
                species = _weighted(rng, species_names, species_weights)
                _, _, _, (w_lo, w_hi), lifespan = species_info[species]
                registered = created + dt.timedelta(days=rng.randint(0, 400))
                if registered > self.day_start:
                    registered = created
                age_at_registration = lifespan * rng.betavariate(1.2, 3.0)
                dob = (registered - dt.timedelta(days=365.25 * age_at_registration + 56)).date()
                death_age_days = 365.25 * lifespan * max(0.3, rng.gauss(1.0, 0.2))
                death = dob + dt.timedelta(days=death_age_days)
                deceased_on = death if registered.date() < death < self.anchor_day else None
                owners = [relation["id"]]
                if len(relations) > 1 and rng.random() < 0.04:  # co-owned (e.g. separated partners)
                    other = rng.choice(relations)["id"]
                    if other != relation["id"]:
                        owners.append(other)
                chip = None
                if rng.random() < {"dog": 0.97, "horse": 0.97, "cat": 0.75, "ferret": 0.6, "rabbit": 0.1}.get(
                    species, 0
                ):
                    prefix = _weighted(rng, [p for p, _ in c.CHIP_PREFIXES], [w for _, w in c.CHIP_PREFIXES])
                    chip = prefix + f"{rng.randrange(10**12):012d}"
                sex = rng.choice(["male", "female"])
                neuter_p = {"dog": 0.55, "cat": 0.85, "rabbit": 0.4, "ferret": 0.5}.get(species, 0.05)
                gender = f"neutered_{sex}" if rng.random() < neuter_p else sex
                updated = registered
                if deceased_on is not None:
                    updated = dt.datetime.combine(deceased_on, dt.time(17, 30), AMSTERDAM)
                record = self.add(
                    "animals",
                    {
                        "updated_at": ts(min(updated, self.anchor)),
                        "created_at": ts(registered),
                        "relation_ids": owners,
                        "name": rng.choice(c.PET_NAMES),
                        "species": species,
                        "breed": rng.choice(c.BREEDS[species]),
                        "gender": gender,
                        "colour": rng.choice(c.COLOURS),
                        "chip_number": chip,
                        "date_of_birth": dob.isoformat(),
                        "deceased": deceased_on is not None,
                        "deceased_on": deceased_on.isoformat() if deceased_on else None,
                    },
                )
                if species == "dog":  # dogs span a wide weight range; log-uniform looks right
                    weight = math.exp(rng.uniform(math.log(w_lo), math.log(w_hi)))
                else:
                    weight = rng.uniform(w_lo, w_hi)
                self.adult_weight[record["id"]] = weight
        # Clients whose pets all died mostly stop being active clients.
        pets_alive: dict[int, bool] = {}
        for animal in self.out["animals"]:
            for owner in animal["relation_ids"]:
                pets_alive[owner] = pets_alive.get(owner, False) or not animal["deceased"]
        for relation in relations:
            if not pets_alive.get(relation["id"], True) and rng.random() < 0.6:
                relation["active"] = False

    def _shifts_and_reminders(self) -> None:
        """The roster and the practice's reminders, which follow from the staff, agenda and clinical record."""
        shifts = generate_shifts(
            self.rng, self.out["staff"], self.out["agenda"], first_day=self.start.date(),
            last_day=self.anchor_day + AGENDA_HORIZON, anchor=self.anchor, opening_weekday=self._opening_weekday,
        )  # fmt: skip
        for shift in shifts:
            self.add("shifts", shift)
        reminders = generate_reminders(
            self.rng("reminders"), relations=self.out["relations"], animals=self.out["animals"],
            consults=self.out["consults"], vaccinations=self.out["vaccinations"],
            prescriptions=self.out["prescriptions"], anchor=self.anchor,
        )  # fmt: skip
        for reminder in reminders:
            self.add("reminders", reminder)

    # -- the agenda and everything that follows from a visit -------------------------------------------
    def _agenda(self) -> None:
        rng = self.rng("agenda")
        clinical = self.rng("clinical")
        animals = self.out["animals"]
        self.animal_by_id = {a["id"]: a for a in animals}
        self.animal_active = {
            a["id"]: (
                dt.datetime.strptime(a["created_at"], TS_FORMAT).date(),
                dt.date.fromisoformat(a["deceased_on"]) if a["deceased_on"] else dt.date.max,
            )
            for a in animals
        }
        species_factor = {s[0]: s[2] for s in c.SPECIES}
        # Planned visits: (day, seq, animal_id, reason_text, booked_at or None, kind)
        pending: list[tuple[dt.date, int, int, str, dt.datetime | None, str]] = []
        seq = 0
        for animal in animals:
            if animal["deceased_on"] and rng.random() < 0.6:
                day = dt.date.fromisoformat(animal["deceased_on"])
                heapq.heappush(pending, (day, seq, animal["id"], "euthanasie", None, "euthanasia"))
                seq += 1
            # Vaccination history before the window: a booster falls due somewhere in the first year.
            if animal["species"] in c.VACCINES_BY_SPECIES and rng.random() < 0.7:
                day = self.start.date() + dt.timedelta(days=rng.randint(0, 365))
                heapq.heappush(pending, (day, seq, animal["id"], "jaarlijkse vaccinatie", None, "booster"))
                seq += 1
        self.occupied: dict[tuple[str, int, dt.date], set[int]] = {}
        self.vet_load: dict[tuple[int, dt.date], int] = {}
        self.invoice_seq: dict[int, int] = {}
        last_day = self.anchor_day + AGENDA_HORIZON
        day = self.start.date()
        years = self.config.history_years
        while day <= last_day:
            weekday = self._opening_weekday(day)
            if weekday is None:
                day += dt.timedelta(days=1)
                continue
            weekday_factor = [1.15, 1.0, 1.0, 0.95, 1.05, 0.4][weekday]
            season = 1 + 0.12 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 80) / 365.25)
            growth = 1 + 0.05 * ((day - self.start.date()).days / 365.25 - years / 2)
            visits: list[tuple[int, str, dt.datetime | None, str]] = []
            while pending and pending[0][0] <= day:
                _, _, animal_id, reason_text, booked_at, kind = heapq.heappop(pending)
                visits.append((animal_id, reason_text, booked_at, kind))
            for _ in range(_poisson(rng, self.scale.appointments_per_day * weekday_factor * season * growth)):
                for _attempt in range(6):
                    animal = animals[rng.randrange(len(animals))]
                    lo, hi = self.animal_active[animal["id"]]
                    if lo <= day <= hi and rng.random() < species_factor[animal["species"]] / 1.3:
                        visits.append((animal["id"], "", None, "new"))
                        break
            for animal_id, reason_text, booked_at, kind in visits:
                # Each visit draws from its own generator, so how far the anchor day has progressed (which
                # visits are booked yet, which are done) does not change the rest of that day's agenda.
                visit_rng = random.Random(rng.getrandbits(64))
                follow = self._visit(
                    visit_rng, clinical, day, weekday, animal_id, reason_text, booked_at, kind
                )
                for entry in follow:
                    heapq.heappush(pending, (entry[0], seq, *entry[1:]))
                    seq += 1
            day += dt.timedelta(days=1)

    def _opening_weekday(self, day: dt.date) -> int | None:
        """The weekday whose opening hours the practice keeps on `day` (0 = Monday … 5 = Saturday), None when
        closed. The anchor day is always a full weekday, even on a weekend: the demo is started on any day and
        must show a practice at work."""
        if day == self.anchor_day:
            return min(day.weekday(), 4)
        return None if day.weekday() == 6 else day.weekday()

    def _pick_reason(self, rng: random.Random, animal: Record, day: dt.date) -> c.Reason:
        age = (day - dt.date.fromisoformat(animal["date_of_birth"])).days / 365.25
        options = [
            r
            for r in c.REASONS
            if (not r.species or animal["species"] in r.species)
            and age >= r.min_age_years
            and (r.sex is None or animal["gender"] == r.sex)  # neutering: intact animals only
        ]
        season = 1 + 0.5 * math.sin(
            2 * math.pi * (day.timetuple().tm_yday - 60) / 365.25
        )  # spring: vaccines, ticks
        weights = [r.weight * (season if r.appointment_type == "vaccinatie" else 1.0) for r in options]
        return _weighted(rng, options, weights)

    def _slot(
        self,
        rng: random.Random,
        key: tuple[str, int],
        day: dt.date,
        weekday: int,
        minutes: int,
        surgery: bool,
    ) -> int | None:
        """A free quarter-hour start for a resource (so the agenda has no double bookings), or None when the
        day has no room left for `minutes`."""
        taken = self.occupied.setdefault((key[0], key[1], day), set())
        if weekday == 5:
            first, last = 36, 47  # Saturday 09:00-12:00
        elif surgery:
            first, last = 34, 44  # surgery in the morning
        else:
            first, last = 34, 70  # 08:30-17:30
        n = max(1, math.ceil(minutes / 15))
        start = rng.randint(first, last)  # usually free: try one guess before listing the free starts
        if start in taken or not taken.isdisjoint(range(start + 1, start + n)):
            free = [
                s for s in range(first, last + 1) if s not in taken and taken.isdisjoint(range(s + 1, s + n))
            ]
            if not free:
                return None
            start = rng.choice(free)
        taken.update(range(start, start + n))
        return start

    def _visit(
        self,
        rng: random.Random,
        clinical: random.Random,
        day: dt.date,
        weekday: int,
        animal_id: int,
        reason_text: str,
        booked_at: dt.datetime | None,
        kind: str,
    ) -> list[tuple[dt.date, int, str, dt.datetime | None, str]]:
        follow: list[tuple[dt.date, int, str, dt.datetime | None, str]] = []
        animal = self.animal_by_id[animal_id]
        lo, hi = self.animal_active[animal_id]
        if not lo <= day <= hi:
            return follow
        if kind in ("booster", "follow_up", "rebook") and rng.random() > {
            "booster": 0.78,
            "follow_up": 0.85,
        }.get(kind, 0.5):
            return follow  # the client did not come back; realistic attrition
        if kind == "euthanasia":
            reason = c.EUTHANASIA
        elif kind == "follow_up":
            reason = c.FOLLOW_UP
        elif reason_text:
            reason = c.REASON_BY_TEXT[reason_text]
        else:
            reason = self._pick_reason(rng, animal, day)
        minutes = c.APPOINTMENT_MINUTES[reason.appointment_type]
        surgery = reason.needs_room == "operating"
        if surgery:
            vet = self.vets[rng.randrange(len(self.vets))]
            key = ("room", self.operating_room["id"])
            slot = self._slot(rng, key, day, weekday, minutes, surgery)
        else:
            # Reception books the colleague with the fewest patients that day who still has room.
            slot = None
            by_load = sorted(self.vets, key=lambda v: (self.vet_load.get((v["id"], day), 0), rng.random()))
            for vet in by_load:
                if self.vet_load.get((vet["id"], day), 0) >= VET_DAY_CAPACITY:
                    break
                key = ("staff", vet["id"])
                slot = self._slot(rng, key, day, weekday, minutes, surgery)
                if slot is not None:
                    self.vet_load[(vet["id"], day)] = self.vet_load.get((vet["id"], day), 0) + 1
                    break
        if slot is None:
            return follow  # fully booked; the visit simply does not happen
        start = dt.datetime.combine(day, dt.time(slot // 4, (slot % 4) * 15), AMSTERDAM)
        end = start + dt.timedelta(minutes=minutes)
        if booked_at is None:
            if kind == "booster" or surgery:  # a reminder letter, or a planned operation: weeks ahead
                booked_at = start - dt.timedelta(days=rng.randint(5, 30), hours=rng.randint(0, 8))
            elif kind == "new" and rng.random() < WALK_IN_SHARE:
                booked_at = start - dt.timedelta(
                    minutes=rng.randint(2, 12)
                )  # registered at the desk on arrival
            elif kind == "euthanasia" or rng.random() < 0.35:
                # Same day: most clients call when the practice opens, so by mid-morning the day is mostly set.
                opens = dt.datetime.combine(day, dt.time(8, 0), AMSTERDAM)
                called = opens + dt.timedelta(minutes=rng.expovariate(1 / SAME_DAY_CALL_MINUTES))
                booked_at = min(called, start - dt.timedelta(minutes=15))
            elif rng.random() < 0.6:
                booked_at = start - dt.timedelta(days=rng.randint(1, 7), hours=rng.randint(0, 8))
            else:
                booked_at = start - dt.timedelta(days=rng.randint(8, 45), hours=rng.randint(0, 8))
        if booked_at > self.anchor:
            return follow  # not booked yet at the moment the data set ends
        owners = animal["relation_ids"]
        relation_id = owners[0] if len(owners) == 1 or rng.random() < 0.7 else owners[1]
        lead_days = (start - booked_at).total_seconds() / 86400
        status = "booked"
        updated = booked_at
        if start > self.anchor:
            if rng.random() < 0.03:
                status, updated = "cancelled", booked_at + (self.anchor - booked_at) * rng.random()
        elif rng.random() < 0.05:
            status, updated = "cancelled", booked_at + (start - booked_at) * rng.random()
        else:
            history = self.no_show_history.get(relation_id, 0)
            p_no_show = 0.02 + 0.0022 * min(lead_days, 60) + self.no_show_propensity.get(relation_id, 0.0)
            p_no_show += 0.06 * min(history, 3)
            if kind == "euthanasia" or surgery:
                p_no_show *= 0.2
            if rng.random() < p_no_show:
                # Reception waits a quarter of an hour before marking a no-show; until then it stays booked.
                if start + NO_SHOW_AFTER <= self.anchor:
                    status = "no_show"
                    updated = min(
                        self.anchor, start + NO_SHOW_AFTER + dt.timedelta(minutes=rng.randint(0, 90))
                    )
                    self.no_show_history[relation_id] = history + 1
                    if rng.random() < 0.5:  # many rebook within the next days
                        follow.append(
                            (
                                day + dt.timedelta(days=rng.randint(2, 10)),
                                animal_id,
                                reason.text if reason.text in c.REASON_BY_TEXT else "",
                                None,
                                "rebook",
                            )
                        )
            elif end + dt.timedelta(minutes=30) > self.anchor:
                status, updated = (
                    "checked_in",
                    start - dt.timedelta(minutes=5),
                )  # in the waiting room or consult
            else:
                status, updated = "done", end + dt.timedelta(minutes=rng.randint(1, 25))
        appointment = self.add(
            "agenda",
            {
                "updated_at": ts(min(updated, self.anchor)),
                "type": reason.appointment_type,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "resource_type": key[0],
                "resource_id": key[1],
                "animal_id": animal_id,
                "relation_id": relation_id,
                "status": status,
                "reason": reason.text,
                "booked_at": ts(booked_at),
            },
        )
        if status == "done":
            follow += self._consult(clinical, appointment, animal, reason, vet, start, end)
        return follow

    def _consult(
        self,
        rng: random.Random,
        appointment: Record,
        animal: Record,
        reason: c.Reason,
        vet: Record,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[tuple[dt.date, int, str, dt.datetime | None, str]]:
        follow: list[tuple[dt.date, int, str, dt.datetime | None, str]] = []
        day = start.date()
        age = (day - dt.date.fromisoformat(animal["date_of_birth"])).days / 365.25
        adult = self.adult_weight[animal["id"]]
        weight = adult * min(1.0, 0.25 + age * 1.5) * rng.gauss(1.0, 0.03)
        species = animal["species"]
        diagnosis = rng.choice([d for d in reason.diagnoses if not d.species or species in d.species])
        closed = min(end + dt.timedelta(minutes=rng.randint(1, 25)), self.anchor)
        consult = self.add(
            "consults",
            {
                "updated_at": ts(closed),
                "appointment_id": appointment["id"],
                "animal_id": animal["id"],
                "relation_id": appointment["relation_id"],
                "vet_id": vet["id"],
                "date": start.isoformat(),
                "reason": reason.text,
                "soap": dict(
                    zip(("subjective", "objective", "assessment", "plan"), reason.soap, strict=True)
                ),
                "diagnoses": [{"description": diagnosis.text, "venom_code": diagnosis.venom_code}],
                "weight_kg": round(weight, 2 if weight < 10 else 1),
                "temperature_c": round(rng.gauss(38.6, 0.4), 1)
                if animal["species"] in ("dog", "cat")
                else None,
            },
        )
        lines: list[tuple[str, int]] = [(code, 1) for code in self._fitting(reason.services, species)]
        if reason.follow_up_days:
            follow.append(
                (
                    day + dt.timedelta(days=reason.follow_up_days + rng.randint(-2, 2)),
                    animal["id"],
                    "",
                    closed,
                    "follow_up",
                )
            )
        if reason.appointment_type == "vaccinatie":
            vaccine_due = self.vaccine_due.setdefault(animal["id"], {})
            for code, months in c.VACCINES_BY_SPECIES.get(species, []):
                due_before = vaccine_due.get(code)
                if due_before is not None and due_before > day + dt.timedelta(days=60):
                    continue  # e.g. the 3-yearly DHPPi is not due this year
                due = day + dt.timedelta(days=round(months * 30.44))
                vaccine_due[code] = due
                self.add(
                    "vaccinations",
                    {
                        "updated_at": ts(closed),
                        "animal_id": animal["id"],
                        "consult_id": consult["id"],
                        "vet_id": vet["id"],
                        "vaccine_code": code,
                        "vaccine": c.PRODUCT_BY_CODE[code].name,
                        "batch_number": f"A{rng.randint(100000, 999999)}",
                        "given_on": day.isoformat(),
                        "due_on": due.isoformat(),
                    },
                )
                lines.append((code, 1))
            if vaccine_due:
                follow.append(
                    (
                        min(vaccine_due.values()) + dt.timedelta(days=rng.randint(-10, 21)),
                        animal["id"],
                        "jaarlijkse vaccinatie",
                        None,
                        "booster",
                    )
                )
        prescribed = reason.prescriptions if diagnosis.prescriptions is None else diagnosis.prescriptions
        for code in self._fitting(prescribed, species):
            if rng.random() < 0.7:
                product = c.PRODUCT_BY_CODE[code]
                quantity = rng.choice([1, 1, 1, 2])
                self.add(
                    "prescriptions",
                    {
                        "updated_at": ts(closed),
                        "animal_id": animal["id"],
                        "consult_id": consult["id"],
                        "vet_id": vet["id"],
                        "date": day.isoformat(),
                        "product_code": code,
                        "product_name": product.name,
                        "quantity": quantity,
                        "dispensing_category": product.dispensing_category,
                        "instructions": product.usage,
                    },
                )
                lines.append((code, quantity))
        # The in-house analyser has reference ranges for dogs and cats only.
        if reason.lab_probability and species in ("dog", "cat") and rng.random() < reason.lab_probability:
            self._labs(rng, animal, consult, reason, day, closed)
        diets = self._fitting(["F001", "F002", "F003"], species)
        if reason.text in ("veel drinken en plassen", "senior check") and diets and rng.random() < 0.2:
            lines.append((rng.choice(diets), rng.choice([1, 2])))
        self._invoice(rng, appointment, lines, day, closed)
        return follow

    @staticmethod
    def _fitting(codes: list[str] | tuple[str, ...], species: str) -> list[str]:
        """The products of a list that are made for this species (a visit lists alternatives per species)."""
        return [code for code in codes if c.fits(c.PRODUCT_BY_CODE[code], species)]

    def _labs(
        self,
        rng: random.Random,
        animal: Record,
        consult: Record,
        reason: c.Reason,
        day: dt.date,
        closed: dt.datetime,
    ) -> None:
        cat = animal["species"] == "cat"
        panel = {"ALT", "ALKP", "CREA", "UREA", "GLU", "TP", "HCT"}
        if reason.text == "braken en diarree":
            panel = {"ALT", "ALKP", "UREA", "TP", "HCT"}
        if cat:
            panel.add("T4")
        # Disease shifts the expected values: kidneys for PU/PD, thyroid for weight loss in cats.
        shift = {
            "veel drinken en plassen": {"CREA": 1.5, "UREA": 1.5, "GLU": 1.15},
            "gewichtsverlies": {"T4": 1.7},
        }.get(reason.text, {})
        reported = closed + dt.timedelta(hours=rng.choice([1, 20, 26]))  # in-house or external lab
        for code, name, unit, dog_range, cat_range in c.LAB_TESTS:
            if code not in panel:
                continue
            low, high = cat_range if cat else dog_range
            mid, sd = (low + high) / 2, (high - low) / 4
            value = max(0.0, round(rng.gauss(mid * shift.get(code, 1.0), sd), 1))
            flag = "H" if value > high else "L" if value < low else "N"
            self.add(
                "labresults",
                {
                    "updated_at": ts(min(reported, self.anchor)),
                    "animal_id": animal["id"],
                    "consult_id": consult["id"],
                    "date": day.isoformat(),
                    "test_code": code,
                    "test_name": name,
                    "value": value,
                    "unit": unit,
                    "reference_low": low,
                    "reference_high": high,
                    "flag": flag,
                },
            )

    def _invoice(
        self,
        rng: random.Random,
        appointment: Record,
        lines: list[tuple[str, int]],
        day: dt.date,
        closed: dt.datetime,
    ) -> None:
        out_lines = []
        for code, quantity in lines:
            product = c.PRODUCT_BY_CODE[code]
            unit = self.price_at(code, day)
            total = unit * quantity
            out_lines.append(
                {
                    "product_id": self.product_ids[code],
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
        invoice = self.add(
            "invoices",
            {
                "updated_at": ts(closed),
                "relation_id": appointment["relation_id"],
                "appointment_id": appointment["id"],
                "date": day.isoformat(),
                "number": f"{self.pid}-{day.year}-{self.invoice_seq[day.year]:05d}",
                "lines": out_lines,
                "total_excl_vat_cents": excl,
                "vat_cents": vat,
                "total_cents": excl + vat,
            },
        )
        method = _weighted(rng, ["pin", "cash", "transfer", None], [72, 4, 20, 4])
        if method is None:
            return  # unpaid: the debtor list has something to chase
        paid = closed + (
            dt.timedelta(days=rng.randint(3, 30)) if method == "transfer" else dt.timedelta(minutes=2)
        )
        if paid > self.anchor:
            return
        self.add(
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
