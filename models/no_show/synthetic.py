"""An appointment book with a known no-show process, for tests and benchmarks of the no-show model.

The process is the Animana simulator's (``connectors/animana/simulator/agenda.py``): a no-show is more
likely the longer ahead the appointment was booked, for the few clients who tend to miss appointments, and
after each earlier no-show; surgery is rarely missed. Because every appointment's true probability is
known (``p_true``), a test can say what calibrated means on it: the observed rate per band of predicted
risk, and the book's base rate, against the model's predictions.
"""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

TYPES = ("consult", "vaccination", "surgery", "dental")
SPECIES = ("dog", "cat", "rabbit")


def true_no_show_probability(
    lead_days: float, propensity: float, prior_no_shows: int, surgery: bool
) -> float:
    p = 0.02 + 0.0022 * min(lead_days, 60) + propensity + 0.06 * min(prior_no_shows, 3)
    return p * 0.2 if surgery else p


def appointment_book(
    *,
    clients: int = 800,
    years: float = 2.0,
    anchor: dt.datetime = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC),
    practice_id: int = 1,
    seed: int = 0,
) -> pl.DataFrame:
    """Appointments in the shape of ``warehouse.learning.eventlog.appointment_frame`` plus ``p_true``: finished ones
    (done / no-show / cancelled) before ``anchor``, booked ones in the weeks after it."""
    rng = random.Random(seed)
    start = anchor - dt.timedelta(days=365 * years)
    rows: list[dict[str, object]] = []
    for client in range(1, clients + 1):
        propensity = rng.choices([0.0, 0.03, 0.12], [70, 20, 10])[0]
        species = rng.choice(SPECIES)
        prior_no_shows = 0
        at = start + dt.timedelta(days=rng.uniform(0, 90))
        while at < anchor + dt.timedelta(days=40):
            kind = rng.choices(TYPES, [60, 25, 8, 7])[0]
            roll = rng.random()
            if kind == "surgery" or roll < 0.35 * 0.65:
                lead = rng.uniform(5, 30) if kind == "surgery" else rng.uniform(0.02, 0.2)
            elif roll < 0.74:
                lead = rng.uniform(1, 7.3)
            else:
                lead = rng.uniform(8, 45.3)
            starts = at.replace(hour=rng.randint(7, 16), minute=rng.choice((0, 15, 30, 45)))
            booked = starts - dt.timedelta(days=lead)
            p = true_no_show_probability(lead, propensity, prior_no_shows, kind == "surgery")
            if booked > anchor:
                break  # not booked yet when the book is read
            if starts > anchor:
                status = "booked"
            elif rng.random() < 0.05:
                status = "cancelled"
            elif rng.random() < p:
                status = "no_show"
                prior_no_shows += 1
            else:
                status = "done"
            rows.append({"practice_id": practice_id, "appointment_id": len(rows) + 1, "client_id": client,
                         "patient_id": client, "appointment_type": kind, "species": species,
                         "booked_at": booked, "starts_at": starts, "status": status, "p_true": p})  # fmt: skip
            at = starts + dt.timedelta(days=rng.expovariate(1 / 75))
    return pl.DataFrame(rows).with_columns(pl.col("booked_at", "starts_at").cast(pl.Datetime("us", "UTC")))
