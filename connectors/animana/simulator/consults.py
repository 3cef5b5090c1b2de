"""What follows from a visit that took place: the consult, vaccinations, prescriptions, lab results, and the
invoice (handed to billing). Products fit the patient's species: a horse never leaves with a dog's medicine.
"""

from __future__ import annotations

import datetime as dt
import random

from .billing import Billing
from .catalog.clinical import LAB_TESTS, Reason
from .catalog.products import PRODUCT_BY_CODE, VACCINES_BY_SPECIES, fits
from .clock import ts
from .world import PracticeWorld, Record

# A visit planned from an earlier one: (day, animal_id, reason text or "", booked_at or None, kind).
PlannedVisit = tuple[dt.date, int, str, dt.datetime | None, str]


def fitting(codes: list[str] | tuple[str, ...], species: str) -> list[str]:
    """The products of a list that are made for this species (a visit lists alternatives per species)."""
    return [code for code in codes if fits(PRODUCT_BY_CODE[code], species)]


class ClinicalRecord:
    def __init__(self, world: PracticeWorld, billing: Billing) -> None:
        self.world = world
        self.billing = billing
        self.vaccine_due: dict[int, dict[str, dt.date]] = {}  # per animal: vaccine code -> next due day

    def consult(
        self,
        rng: random.Random,
        appointment: Record,
        animal: Record,
        reason: Reason,
        vet: Record,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[PlannedVisit]:
        follow: list[PlannedVisit] = []
        day = start.date()
        age = (day - dt.date.fromisoformat(animal["date_of_birth"])).days / 365.25
        adult = self.world.adult_weight[animal["id"]]
        weight = adult * min(1.0, 0.25 + age * 1.5) * rng.gauss(1.0, 0.03)
        species = animal["species"]
        diagnosis = rng.choice([d for d in reason.diagnoses if not d.species or species in d.species])
        closed = min(end + dt.timedelta(minutes=rng.randint(1, 25)), self.world.anchor)
        consult = self.world.add(
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
        lines: list[tuple[str, int]] = [(code, 1) for code in fitting(reason.services, species)]
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
            for code, months in VACCINES_BY_SPECIES.get(species, []):
                due_before = vaccine_due.get(code)
                if due_before is not None and due_before > day + dt.timedelta(days=60):
                    continue  # e.g. the 3-yearly DHPPi is not due this year
                due = day + dt.timedelta(days=round(months * 30.44))
                vaccine_due[code] = due
                self.world.add(
                    "vaccinations",
                    {
                        "updated_at": ts(closed),
                        "animal_id": animal["id"],
                        "consult_id": consult["id"],
                        "vet_id": vet["id"],
                        "vaccine_code": code,
                        "vaccine": PRODUCT_BY_CODE[code].name,
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
        for code in fitting(prescribed, species):
            if rng.random() < 0.7:
                product = PRODUCT_BY_CODE[code]
                quantity = rng.choice([1, 1, 1, 2])
                self.world.add(
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
        diets = fitting(["F001", "F002", "F003"], species)
        if reason.text in ("veel drinken en plassen", "senior check") and diets and rng.random() < 0.2:
            lines.append((rng.choice(diets), rng.choice([1, 2])))
        self.billing.invoice(rng, appointment, lines, day, closed)
        return follow

    def _labs(
        self,
        rng: random.Random,
        animal: Record,
        consult: Record,
        reason: Reason,
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
        for code, name, unit, dog_range, cat_range in LAB_TESTS:
            if code not in panel:
                continue
            low, high = cat_range if cat else dog_range
            mid, sd = (low + high) / 2, (high - low) / 4
            value = max(0.0, round(rng.gauss(mid * shift.get(code, 1.0), sd), 1))
            flag = "H" if value > high else "L" if value < low else "N"
            self.world.add(
                "labresults",
                {
                    "updated_at": ts(min(reported, self.world.anchor)),
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
