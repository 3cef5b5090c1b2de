"""The demo world is a practice at work on the day the demo is started: today's agenda is full (the morning
seen, the rest booked, walk-ins and no-shows among them), the coming weeks fill up less the further they are,
three years of seasonal history lie behind, and what is given and prescribed fits the patient."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from connectors.animana.simulator import GeneratorConfig, generate_practice
from connectors.animana.simulator.catalog import products as c
from vetconnect.animana_cli import DEMO_SEED

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# A Thursday afternoon in December, the quiet season: a day that is full here is full in any season.
ANCHOR = dt.datetime(2026, 12, 3, 14, 30, tzinfo=AMSTERDAM)


def start_of(appointment: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(appointment["start"])


def booked_of(appointment: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(appointment["booked_at"].replace("Z", "+00:00"))


def vets_of(world: dict) -> list[int]:
    return [s["id"] for s in world["staff"] if s["role"] == "vet" and s["active"]]


def patients_per_vet(world: dict, day: dt.date) -> dict[int, int]:
    """Appointments on each active vet's agenda that day, whatever became of them, except cancellations."""
    counts = dict.fromkeys(vets_of(world), 0)
    for a in world["agenda"]:
        if a["resource_type"] == "staff" and a["status"] != "cancelled" and start_of(a).date() == day:
            counts[a["resource_id"]] += 1
    return counts


@pytest.fixture(scope="module")
def world() -> dict:
    return generate_practice(GeneratorConfig(seed=DEMO_SEED, scale="demo", anchor=ANCHOR), 1001)


def test_today_is_a_full_working_day_in_progress(world):
    today = [a for a in world["agenda"] if start_of(a).date() == ANCHOR.date()]
    per_vet = patients_per_vet(world, ANCHOR.date())
    assert len(per_vet) >= 2
    assert all(15 <= n <= 25 for n in per_vet.values()), per_vet
    # As of now: the morning was seen (or did not come), the rest of the day is still to come.
    for a in today:
        end = dt.datetime.fromisoformat(a["end"])
        if start_of(a) > ANCHOR:
            assert a["status"] in ("booked", "cancelled"), a
        elif end + dt.timedelta(minutes=30) <= ANCHOR:
            assert a["status"] in ("done", "no_show", "cancelled"), a
    statuses = Counter(a["status"] for a in today)
    assert statuses["done"] >= 5 and statuses["booked"] >= 10, statuses
    # Every consult of today's done appointments is written up; nothing is recorded for what is still to come.
    consulted = {x["appointment_id"] for x in world["consults"]}
    assert {a["id"] for a in today if a["status"] == "done"} <= consulted
    assert not {a["id"] for a in today if a["status"] != "done"} & consulted


def test_walk_ins_and_no_shows_today(world):
    today = [a for a in world["agenda"] if start_of(a).date() == ANCHOR.date()]
    walk_ins = [a for a in today if start_of(a) - booked_of(a) < dt.timedelta(minutes=15)]
    assert walk_ins and all(booked_of(a) <= ANCHOR for a in walk_ins)
    assert any(a["status"] == "no_show" for a in today)
    assert all(start_of(a) + dt.timedelta(minutes=15) <= ANCHOR for a in today if a["status"] == "no_show")
    assert all(booked_of(a) <= ANCHOR for a in world["agenda"])  # nothing is booked in the future


def test_coming_weeks_are_booked_less_the_further_ahead(world):
    weeks = Counter(
        (start_of(a).date() - ANCHOR.date()).days // 7
        for a in world["agenda"]
        if start_of(a).date() > ANCHOR.date() and a["status"] != "cancelled"
    )
    fill = [weeks[w] for w in range(6)]
    assert all(earlier > later for earlier, later in zip(fill[:4], fill[1:5], strict=True)), fill
    assert fill[5] < 0.15 * fill[0], fill
    # Next week is partly booked: well below a week of the past, well above nothing.
    past_week = sum(
        1
        for a in world["agenda"]
        if 0 < (ANCHOR.date() - start_of(a).date()).days <= 7 and a["status"] != "cancelled"
    )
    assert 0.2 * past_week < fill[1] < 0.8 * past_week, (fill, past_week)


def test_three_years_of_history_with_seasons(world):
    first = min(start_of(a).date() for a in world["agenda"])
    assert 3 * 365 - 3 <= (ANCHOR.date() - first).days <= 3 * 366
    history = [a for a in world["agenda"] if start_of(a).date() < ANCHOR.date() - dt.timedelta(days=30)]
    by_month = Counter(start_of(a).month for a in history)
    summer = sum(by_month[m] for m in (5, 6, 7)) / 3
    winter = sum(by_month[m] for m in (11, 12, 1)) / 3
    assert summer > 1.1 * winter, by_month
    # The vets were at work every past working day, not seeing a trickle of patients.
    vets = set(vets_of(world))
    weekdays = [
        start_of(a).date()
        for a in history
        if start_of(a).weekday() < 5 and a["resource_type"] == "staff" and a["resource_id"] in vets
    ]
    assert 15 <= len(weekdays) / len(set(weekdays)) / len(vets) <= 25


def test_what_is_given_fits_the_patient(world):
    species = {a["id"]: a["species"] for a in world["animals"]}
    gender = {a["id"]: a["gender"] for a in world["animals"]}
    for v in world["vaccinations"]:
        product = c.PRODUCT_BY_CODE[v["vaccine_code"]]
        assert c.fits(product, species[v["animal_id"]]), (product.name, species[v["animal_id"]])
    equilis = [v for v in world["vaccinations"] if v["vaccine"].startswith("Equilis")]
    assert equilis and all(species[v["animal_id"]] == "horse" for v in equilis)
    for p in world["prescriptions"]:
        product = c.PRODUCT_BY_CODE[p["product_code"]]
        assert c.fits(product, species[p["animal_id"]]), (product.name, species[p["animal_id"]])
        assert p["instructions"] == product.usage and p["instructions"]
    ear_drops = [p for p in world["prescriptions"] if p["product_code"] == "M004"]
    assert ear_drops and all("oor" in p["instructions"] for p in ear_drops)
    others = [p["instructions"] for p in world["prescriptions"] if p["product_code"] != "M004"]
    assert others and not any(re.search(r"\boor\b", text) for text in others)
    # What is invoiced fits the patient of the appointment too (no dog's castration for a cat).
    patient_of = {a["id"]: a["animal_id"] for a in world["agenda"]}
    for invoice in world["invoices"]:
        animal = patient_of[invoice["appointment_id"]]
        for line in invoice["lines"]:
            assert c.fits(c.PRODUCT_BY_CODE[line["product_code"]], species[animal]), (line, species[animal])
    # Neutering is done on intact animals of the right sex; the lab panel is for dogs and cats.
    for a in world["agenda"]:
        if a["reason"] in ("castratie", "sterilisatie"):
            assert gender[a["animal_id"]] == ("male" if a["reason"] == "castratie" else "female")
    consult_animal = {x["id"]: x["animal_id"] for x in world["consults"]}
    assert {species[consult_animal[lab["consult_id"]]] for lab in world["labresults"]} <= {"dog", "cat"}
    diagnoses = Counter(
        (x["diagnoses"][0]["description"], species[x["animal_id"]]) for x in world["consults"]
    )
    assert not diagnoses[("hyperthyreoïdie", "dog")]


def test_the_anchor_day_decides_the_world_and_the_hour_only_how_far_it_got():
    def day_of(hour: int) -> dict:
        anchor = ANCHOR.replace(hour=hour, minute=0)
        return generate_practice(
            GeneratorConfig(seed=DEMO_SEED, scale="demo", history_years=1, anchor=anchor), 1002
        )

    def slots(world: dict) -> dict[tuple, str]:
        tomorrow = str(ANCHOR.date() + dt.timedelta(days=1))
        return {
            (a["start"], a["resource_id"], a["animal_id"]): a["status"]
            for a in world["agenda"]
            if a["start"] < tomorrow
        }

    morning, afternoon = day_of(9), day_of(16)
    assert morning == day_of(9)  # deterministic for a given seed and anchor
    # Up to the anchor day, what was booked by 09:00 is still there at 16:00 (same patient, vet and time),
    # further along; later days may differ, as today's consults plan their follow-ups.
    early, late = slots(morning), slots(afternoon)
    assert set(early) < set(late)
    moved_on = [key for key in early if early[key] != late[key]]
    assert moved_on and all(late[key] in ("done", "no_show", "checked_in") for key in moved_on)
    assert all(15 <= n <= 25 for n in patients_per_vet(afternoon, ANCHOR.date()).values())


def test_a_demo_started_on_sunday_still_shows_a_working_day():
    sunday = dt.datetime(2026, 12, 6, 14, 30, tzinfo=AMSTERDAM)
    world = generate_practice(
        GeneratorConfig(seed=DEMO_SEED, scale="demo", history_years=1, anchor=sunday), 1001
    )
    assert all(15 <= n <= 25 for n in patients_per_vet(world, sunday.date()).values())
    last_sunday = sunday.date() - dt.timedelta(days=7)
    assert not any(start_of(a).date() == last_sunday for a in world["agenda"])  # other Sundays stay closed
