"""A public-style event log for tests and benchmarks: a BPI-Challenge-like loan process with integer activity
codes, its own column names and a ``YYYY/MM/DD HH:MM:SS`` timestamp column.

The process has structure a first-order Markov chain cannot see (how many calls were made so far decides
between another call, acceptance and cancellation; the application channel decides the route after
submission), so a model over prefixes should beat the Markov baseline on it.
"""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

COLUMNS = {"case": "Case ID", "activity": "Activity code", "time": "Complete Timestamp",
           "attrs": ("org:channel", "amount_band")}  # fmt: skip
ACTIVITIES = {
    1: "submitted", 2: "partly_submitted", 3: "preaccepted", 4: "declined", 5: "offer_created", 6: "offer_sent",
    7: "call_customer", 8: "offer_accepted", 9: "offer_cancelled", 10: "registered", 11: "approved",
    12: "fraud_check",
}  # fmt: skip


def _trace(rng: random.Random) -> tuple[list[int], str, str]:
    channel = rng.choices(["online", "branch", "phone"], [6, 3, 1])[0]
    band = rng.choices(["low", "mid", "high"], [5, 3, 2])[0]
    trace = [1, 2]
    if channel == "branch" and rng.random() < 0.7:
        return [*trace, 4], channel, band
    if channel == "phone":
        trace.append(12)
    trace += [3, 5, 6]
    calls_wanted = {"low": 1, "mid": 2, "high": 3}[band] + (rng.random() < 0.2)
    for _ in range(calls_wanted):
        trace.append(7)
    if calls_wanted >= 3 and rng.random() < 0.6:
        return [*trace, 9], channel, band
    trace += [8, 10]
    if band == "high" and rng.random() < 0.5:
        trace.append(12)
    trace.append(11)
    return trace, channel, band


def loan_log(
    cases: int = 600, seed: int = 7, start: dt.datetime = dt.datetime(2023, 1, 2, 8)
) -> pl.DataFrame:
    """The log as a polars frame with the public-style column names (write it with ``write_csv``)."""
    rng = random.Random(seed)
    rows: dict[str, list] = {COLUMNS["case"]: [], COLUMNS["activity"]: [], COLUMNS["time"]: [],
                             "org:channel": [], "amount_band": []}  # fmt: skip
    moment = start
    for n in range(cases):
        moment += dt.timedelta(minutes=rng.expovariate(1 / 90))
        trace, channel, band = _trace(rng)
        t = moment
        for activity in trace:
            rows[COLUMNS["case"]].append(f"{200000 + n}")
            rows[COLUMNS["activity"]].append(activity)
            rows[COLUMNS["time"]].append(t.strftime("%Y/%m/%d %H:%M:%S"))
            rows["org:channel"].append(channel)
            rows["amount_band"].append(band)
            t += dt.timedelta(hours=rng.expovariate(1 / (30 if activity == 7 else 4)))
    return pl.DataFrame(rows)
