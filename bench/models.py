"""Models benchmark (not a test; prints figures).

    .venv/bin/python bench/models.py --events 1000000 --demo-practices 2

1. Scale: a BPI-like loan log (models.next_action.synthetic) of about ``--events`` events: parse, train
   (chronological 2/3), score all test prefixes; inference p95 for one context (target < 10 ms); peak RSS.
2. Quality on a demo-like world: the Animana simulator's ``medium`` practices (what `make demo` mirrors)
   turned into care episodes the way ``warehouse.eventlog`` derives them (booking → check-in/no-show/cancel
   → consult → diagnosis → vaccination/prescription → invoice → payment → follow-up), without a database,
   then top-1/top-3 of the model next to the Markov and most-frequent baselines; and the no-show model
   (ROC AUC, Brier) against the history-only baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path and its name would shadow `models`.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from models.eventlog import LogColumns, normalise, read_event_log  # noqa: E402
from models.next_action import evaluate_next_action  # noqa: E402
from models.next_action.synthetic import COLUMNS, loan_log  # noqa: E402
from models.no_show.model import evaluate_no_show  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale(events: int) -> dict:
    cases = max(100, events // 8)
    frame = loan_log(cases, seed=1)
    t = time.perf_counter()
    log = read_event_log(frame, case_col=COLUMNS["case"], activity_col=COLUMNS["activity"], time_col=COLUMNS["time"],
                         attr_cols=COLUMNS["attrs"])  # fmt: skip
    parse_s = time.perf_counter() - t
    report, model = evaluate_next_action(log)
    case = log.filter(pl.col("case_id") == log["case_id"][-1]).sort("seq")
    acts, stamps = case["activity"].to_list(), case["timestamp"].to_list()
    times = []
    for i in range(300):
        n = 1 + i % len(acts)
        t = time.perf_counter()
        model.suggest(acts[:n], stamps[:n], {"org:channel": "online", "amount_band": "mid"})
        times.append(time.perf_counter() - t)
    report.pop("per_prefix_length")
    return {"events": log.height, "cases": cases, "parse_seconds": round(parse_s, 2), **report,
            "inference_p50_ms": round(float(np.percentile(times, 50)) * 1000, 2),
            "inference_p95_ms": round(float(np.percentile(times, 95)) * 1000, 2), "peak_rss_mb": round(rss_mb())}  # fmt: skip


def demo_world(practices: int, scale_name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    from connectors.animana.simulator.generator import GeneratorConfig, generate_practice

    events, appts = [], []
    for pid in range(1001, 1001 + practices):
        data = generate_practice(GeneratorConfig(seed=42, scale=scale_name), pid)
        species = {a["id"]: a["species"] for a in data["animals"]}
        consults = {c.get("appointment_id"): c for c in data["consults"] if c.get("appointment_id")}
        vacc = {(v["animal_id"], v["given_on"]) for v in data["vaccinations"]}
        presc = {(p["animal_id"], p["date"]) for p in data["prescriptions"]}
        inv = {(i["relation_id"], i["date"]) for i in data["invoices"]}
        for a in data["agenda"]:
            start = dt.datetime.fromisoformat(a["start"])
            booked = dt.datetime.strptime(a["booked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            case = f"{pid}:{a['id']}"
            attrs = (species.get(a["animal_id"], ""), a["type"])
            seq = [("booking_made", booked)]
            status = a["status"]
            if status == "cancelled":
                seq.append(("cancelled", min(start, booked + dt.timedelta(days=1))))
            elif status == "no_show":
                seq.append(("no_show", start))
            elif status in ("done", "checked_in"):
                seq.append(("check_in", start))
                c = consults.get(a["id"])
                day = start.date().isoformat()
                if c:
                    seq.append(("consult", start + dt.timedelta(minutes=1)))
                    if c.get("diagnoses"):
                        seq.append(("diagnosis", start + dt.timedelta(minutes=5)))
                if (a["animal_id"], day) in vacc:
                    seq.append(("vaccination", start + dt.timedelta(minutes=15)))
                if (a["animal_id"], day) in presc:
                    seq.append(("prescription", start + dt.timedelta(minutes=20)))
                if (a["relation_id"], day) in inv:
                    seq.append(("invoice", start + dt.timedelta(minutes=40)))
                    seq.append(("payment", start + dt.timedelta(minutes=41)))
            events += [(case, act, ts.astimezone(dt.UTC).replace(tzinfo=None), *attrs) for act, ts in seq]
            appts.append(
                (pid, a["id"], a["relation_id"], a["animal_id"], a["type"], attrs[0], booked, start, status)
            )
    log = pl.DataFrame(
        events, schema=["case_id", "activity", "timestamp", "species", "appointment_type"], orient="row"
    )
    frame = pl.DataFrame(appts, schema=["practice_id", "appointment_id", "client_id", "patient_id", "appointment_type",
                                        "species", "booked_at", "starts_at", "status"], orient="row")  # fmt: skip
    frame = frame.with_columns(
        pl.col("booked_at").dt.convert_time_zone("UTC"), pl.col("starts_at").dt.convert_time_zone("UTC")
    )
    return log, frame


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--demo-practices", type=int, default=2)
    parser.add_argument("--demo-scale", default="medium")
    args = parser.parse_args()
    out = {"scale": scale(args.events)}
    print(json.dumps(out["scale"]), flush=True)
    raw, appts = demo_world(args.demo_practices, args.demo_scale)
    log = normalise(raw, LogColumns("case_id", "activity", "timestamp", ("species", "appointment_type")))
    report, _ = evaluate_next_action(log)
    report.pop("per_prefix_length")
    print(json.dumps({"demo_next_action": report}), flush=True)
    ns, _ = evaluate_no_show(appts)
    for k in ("model", "history_baseline"):
        ns[k].pop("calibration")
    print(json.dumps({"demo_no_show": ns}), flush=True)
    print(json.dumps({"peak_rss_mb": round(rss_mb())}))


if __name__ == "__main__":
    main()
