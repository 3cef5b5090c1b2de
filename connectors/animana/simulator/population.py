"""Who is there before the first visit: staff, rooms, the price list, clients (relations) and their pets.

Each function draws from its own RNG stream of the world, in the order ``generate_practice`` calls them.
"""

from __future__ import annotations

import datetime as dt
import math

from .catalog.animals import BREEDS, CHIP_PREFIXES, COLOURS, PET_NAMES, SPECIES
from .catalog.places import EMAIL_DOMAINS
from .catalog.products import PRODUCTS
from .clock import AMSTERDAM, TS_FORMAT, UTC, ts
from .names import NamePools, iban, slug
from .sampling import weighted
from .world import PracticeWorld


def add_staff(world: PracticeWorld, names: NamePools) -> None:
    rng = world.rng("staff")
    n = world.scale.staff
    n_vets = max(2, round(n * 0.45))
    n_nurses = max(1, round(n * 0.35))
    roles = ["vet"] * n_vets + ["nurse"] * n_nurses + ["receptionist"] * (n - n_vets - n_nurses)
    domain = slug(world.town) + "-dierenarts.nl"
    for role in roles:
        female = rng.random() < 0.7  # the Dutch veterinary workforce is mostly female
        first = rng.choice(names.female_names if female else names.male_names)
        last = rng.choice(names.last_names)
        created = world.start - dt.timedelta(days=rng.randint(30, 4000))
        world.add(
            "staff",
            {
                "updated_at": ts(created),
                "created_at": ts(created),
                "role": role,
                "first_name": first,
                "last_name": last,
                "initials": first[0] + ".",
                "email": f"{slug(first)}@{domain}",
                "active": True,
            },
        )
    # One colleague left during the history window: realistic for syncs (active flips to false).
    leaver = world.out["staff"][-1]
    leaver["active"] = False
    leaver["updated_at"] = ts(world.start + (world.day_start - world.start) * rng.uniform(0.3, 0.9))
    world.vets = [s for s in world.out["staff"] if s["role"] == "vet" and s["active"]]


def add_rooms(world: PracticeWorld) -> None:
    rng = world.rng("resources")
    names = [("Operatiekamer", "room", "operating")]
    names += [(f"Spreekkamer {i}", "room", "consult") for i in range(1, max(2, world.scale.rooms - 2) + 1)]
    if world.scale.rooms > 3:
        names += [("Röntgen", "equipment", "imaging"), ("Echo", "equipment", "imaging")]
    for name, kind, purpose in names[: max(world.scale.rooms, 3)]:
        created = world.start - dt.timedelta(days=rng.randint(100, 3000))
        world.add(
            "resources",
            {"updated_at": ts(created), "name": name, "kind": kind, "purpose": purpose, "active": True},
        )
    world.operating_room = world.out["resources"][0]


def add_products(world: PracticeWorld) -> None:
    rng = world.rng("products")
    for product in PRODUCTS:
        # Prices are revised once a year; the last revision is somewhere in the past year.
        changed = world.day_start - dt.timedelta(days=rng.randint(5, 360), seconds=rng.randint(0, 86399))
        world.add(
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
    world.product_ids = {p["code"]: p["id"] for p in world.out["products"]}


def add_relations(world: PracticeWorld, names: NamePools) -> None:
    rng = world.rng("relations")
    history = world.day_start - world.start
    for _ in range(world.scale.relations):
        if rng.random() < 0.55:  # long-standing clients registered before the history window
            created = world.start - dt.timedelta(days=rng.randint(1, 3650), seconds=rng.randint(0, 86399))
        else:
            created = world.start + history * rng.random() * 0.97
        female = rng.random() < 0.6
        first = rng.choice(names.female_names if female else names.male_names)
        last = rng.choice(names.last_names)
        initials = first[0] + "." + (rng.choice("ACEHJMPW") + "." if rng.random() < 0.35 else "")
        title = ("mevr." if female else "dhr.") if rng.random() < 0.88 else None
        house = str(rng.randint(1, 240)) + (
            rng.choice(["A", "B", "-2", "bis"]) if rng.random() < 0.08 else ""
        )
        local = rng.random() < 0.8
        area = world.pc2 if local else f"{rng.randint(10, 99)}"
        letters = rng.choice("ABCDEGHJKLMNPRTVWXZ") + rng.choice("ABCDEGHJKLMNPRTVWXZ")
        postcode = f"{area}{rng.randint(0, 99):02d} {letters}"
        email = None
        if rng.random() < 0.9:
            suffix = str(rng.randint(1, 99)) if rng.random() < 0.3 else ""
            email = f"{slug(first)}.{slug(last)}{suffix}@{rng.choice(EMAIL_DOMAINS)}"
        if rng.random() < 0.75:
            phone = f"06-{rng.randint(10000000, 99999999)}"
        else:
            phone = f"0{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}"
        updated = created + (world.day_start - created) * rng.random() if rng.random() < 0.35 else created
        record = world.add(
            "relations",
            {
                "updated_at": ts(updated),
                "created_at": ts(created),
                "title": title,
                "initials": initials,
                "first_name": first,
                "last_name": last,
                "street": rng.choice(names.streets),
                "house_number": house,
                "postcode": postcode,
                "city": world.town if local else rng.choice(names.other_towns),
                "email": email,
                "phone": phone,
                "iban": iban(rng) if rng.random() < 0.8 else None,
                "active": True,
            },
        )
        # Most clients always show up; a minority are unreliable.
        world.no_show_propensity[record["id"]] = weighted(rng, [0.0, 0.03, 0.12], [70, 20, 10])


def add_animals(world: PracticeWorld) -> None:
    rng = world.rng("animals")
    relations = world.out["relations"]
    species_names = [s[0] for s in SPECIES]
    species_weights = [s[1] for s in SPECIES]
    species_info = {s[0]: s for s in SPECIES}
    for relation in relations:
        created = dt.datetime.strptime(relation["created_at"], TS_FORMAT).replace(tzinfo=UTC)
        n_pets = weighted(rng, [1, 2, 3, 4], [60, 25, 10, 5])
        for _ in range(n_pets):
            species = weighted(rng, species_names, species_weights)
            _, _, _, (w_lo, w_hi), lifespan = species_info[species]
            registered = created + dt.timedelta(days=rng.randint(0, 400))
            if registered > world.day_start:
                registered = created
            age_at_registration = lifespan * rng.betavariate(1.2, 3.0)
            dob = (registered - dt.timedelta(days=365.25 * age_at_registration + 56)).date()
            death_age_days = 365.25 * lifespan * max(0.3, rng.gauss(1.0, 0.2))
            death = dob + dt.timedelta(days=death_age_days)
            deceased_on = death if registered.date() < death < world.anchor_day else None
            owners = [relation["id"]]
            if len(relations) > 1 and rng.random() < 0.04:  # co-owned (e.g. separated partners)
                other = rng.choice(relations)["id"]
                if other != relation["id"]:
                    owners.append(other)
            chip = None
            if rng.random() < {"dog": 0.97, "horse": 0.97, "cat": 0.75, "ferret": 0.6, "rabbit": 0.1}.get(
                species, 0
            ):
                prefix = weighted(rng, [p for p, _ in CHIP_PREFIXES], [w for _, w in CHIP_PREFIXES])
                chip = prefix + f"{rng.randrange(10**12):012d}"
            sex = rng.choice(["male", "female"])
            neuter_p = {"dog": 0.55, "cat": 0.85, "rabbit": 0.4, "ferret": 0.5}.get(species, 0.05)
            gender = f"neutered_{sex}" if rng.random() < neuter_p else sex
            updated = registered
            if deceased_on is not None:
                updated = dt.datetime.combine(deceased_on, dt.time(17, 30), AMSTERDAM)
            record = world.add(
                "animals",
                {
                    "updated_at": ts(min(updated, world.anchor)),
                    "created_at": ts(registered),
                    "relation_ids": owners,
                    "name": rng.choice(PET_NAMES),
                    "species": species,
                    "breed": rng.choice(BREEDS[species]),
                    "gender": gender,
                    "colour": rng.choice(COLOURS),
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
            world.adult_weight[record["id"]] = weight
    # Clients whose pets all died mostly stop being active clients.
    pets_alive: dict[int, bool] = {}
    for animal in world.out["animals"]:
        for owner in animal["relation_ids"]:
            pets_alive[owner] = pets_alive.get(owner, False) or not animal["deceased"]
    for relation in relations:
        if not pets_alive.get(relation["id"], True) and rng.random() < 0.6:
            relation["active"] = False
