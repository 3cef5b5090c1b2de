"""Models benchmark (not a test; prints figures).

    .venv/bin/python bench/models.py --events 1000000 --demo-practices 2

1. Scale: a BPI-like loan log (models.next_action.synthetic) of about ``--events`` events: parse, train
   (chronological 2/3), score all test prefixes; one-context inference p50/p95 (target p95 < 10 ms) over
   ``--contexts`` random running test cases, for the app's path (``suggest``: flat-array trees), beside the
   same contexts through scikit-learn's ``predict_proba`` and the Markov baseline's lookup (ratios printed);
   measured as the machine is and with ``--contention`` busy-looping processes (requests after a short idle
   gap, as in the app, and back to back); peak RSS.
2. Quality on a demo-like world: the Animana simulator's ``medium`` practices (what `make demo` mirrors)
   turned into care episodes the way ``warehouse.learning.eventlog`` derives them (booking → check-in/no-show/cancel
   → consult → diagnosis → vaccination/prescription → invoice → payment → follow-up), without a database,
   then top-1/top-3 of the model next to the Markov and most-frequent baselines, for care episodes and for
   work sessions (each appointment's clinical work by the staff member it is booked on, as
   ``models.work_sessions`` derives it from synced data); and the no-show model
   (ROC AUC, Brier) against the history-only baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path and its name would shadow `models`.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from models.eventlog import LogColumns, chronological_split, normalise, read_event_log  # noqa: E402
from models.next_action import MarkovBaseline, NextActionModel, evaluate_next_action  # noqa: E402
from models.next_action.synthetic import COLUMNS, loan_log  # noqa: E402
from models.no_show.model import evaluate_no_show  # noqa: E402
from models.runtime import limit_model_threads  # noqa: E402
from models.work_sessions import CLINICAL, RAW_SCHEMA, normalise_sessions, split_sessions  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


@contextmanager
def cpu_contention(processes: int, seconds: float = 600) -> Iterator[None]:
    """``processes`` busy-looping processes for the duration: the tail latency under a saturated CPU."""
    workers = [mp.Process(target=_spin, args=(time.time() + seconds,), daemon=True) for _ in range(processes)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        for w in workers:
            w.terminate()
            w.join()


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
    }


def contexts(test: pl.DataFrame, attr_names: list[str], n: int, seed: int = 3) -> list[tuple]:
    """``n`` random running cases of the test log: (activities, timestamps, attributes of the last event)."""
    attr_cols = [f"attr_{a}" for a in attr_names]
    cases = test.sort(["case_id", "seq"]).group_by("case_id", maintain_order=True).agg("activity", "timestamp",
                                                                                        *attr_cols)  # fmt: skip
    rng = random.Random(seed)
    picked = []
    for row in cases.sample(min(n, cases.height), seed=seed, with_replacement=n > cases.height).iter_rows(
        named=True
    ):
        length = rng.randint(1, len(row["activity"]))
        attrs = {a: row[f"attr_{a}"][length - 1] for a in attr_names}
        picked.append((row["activity"][:length], row["timestamp"][:length], attrs))
    return picked


def inference(model: NextActionModel, markov: MarkovBaseline, picked: list[tuple], gap_s: float) -> dict:
    """One-context latency of three paths over the same contexts, interleaved (the machine's load hits all
    three alike): ``suggest`` (the app's path), scikit-learn's ``predict_proba`` on the same feature row (the
    naive path), and the Markov baseline's table lookup.

    Each call is a request arriving after ``gap_s`` idle, as a page render asks for one suggestion. With no
    gap (back to back), a saturated CPU preempts the loop every few time slices and the tail measures the
    scheduler's slice length rather than the prediction; both are reported."""
    served, naive, lookup = [], [], []
    mismatches = 0
    for activities, timestamps, attrs in picked:
        time.sleep(gap_s)
        t = time.perf_counter()
        top = model.suggest(activities, timestamps, attrs)
        served.append(time.perf_counter() - t)
        time.sleep(gap_s)
        t = time.perf_counter()
        row = model.encoder.context_vector(activities, timestamps, attrs)[None, :]
        proba = model.estimator.predict_proba(row)
        naive.append(time.perf_counter() - t)
        time.sleep(gap_s)
        t = time.perf_counter()
        markov.top_k([activities[-1]], 3)
        lookup.append(time.perf_counter() - t)
        ranked = [model.classes[i] for i in np.argsort(-proba[0], kind="stable")[:3]]
        mismatches += ranked != [a for a, _ in top]
    s, n, m = _percentiles(served), _percentiles(naive), _percentiles(lookup)
    return {"contexts": len(picked), "suggest": s, "sklearn_predict_proba": n, "markov_lookup": m,
            "p95_ratio_sklearn_over_suggest": round(n["p95_ms"] / s["p95_ms"], 1),
            "p95_ratio_suggest_over_markov": round(s["p95_ms"] / m["p95_ms"], 1),
            "top3_mismatches_vs_sklearn": mismatches}  # fmt: skip


def scale(events: int, n_contexts: int, contention: int, gap_s: float) -> dict:
    cases = max(100, events // 8)
    frame = loan_log(cases, seed=1)
    t = time.perf_counter()
    log = read_event_log(frame, case_col=COLUMNS["case"], activity_col=COLUMNS["activity"], time_col=COLUMNS["time"],
                         attr_cols=COLUMNS["attrs"])  # fmt: skip
    parse_s = time.perf_counter() - t
    report, model = evaluate_next_action(log)
    train, test = chronological_split(log)
    markov = MarkovBaseline().fit(model.encoder.prefixes(train), train.sort(["case_id", "seq"])["activity"])
    picked = contexts(test, list(model.encoder.attrs), n_contexts)
    limit_model_threads()  # as the app does: one OpenMP thread
    quiet = inference(model, markov, picked, gap_s)
    with cpu_contention(contention):
        loaded = inference(model, markov, picked, gap_s)
        back_to_back = inference(model, markov, picked, 0.0)
    report.pop("per_prefix_length")
    return {"events": log.height, "cases": cases, "parse_seconds": round(parse_s, 2), **report,
            "model_trees": len(model.estimator._predictors) * len(model.estimator._predictors[0]),
            "request_gap_ms": gap_s * 1000, "inference": quiet, f"inference_with_{contention}_busy_processes": loaded,
            f"inference_with_{contention}_busy_processes_back_to_back": back_to_back,
            "load_average": os.getloadavg(), "peak_rss_mb": round(rss_mb())}  # fmt: skip


def demo_world(practices: int, scale_name: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Care episodes, work-session events (``models.work_sessions``: the clinical work of each appointment,
    by the staff member it is booked on) and appointments of the simulator's practices."""
    from connectors.animana.simulator import GeneratorConfig, generate_practice

    events, appts, work = [], [], []
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
            if a["resource_type"] == "staff":  # surgery is booked on a room: no known clinician
                work += [(pid, f"staff:{a['resource_id']}", act, ts.astimezone(dt.UTC), "", a["animal_id"], a["id"],
                          a["type"], order) for order, (act, ts) in enumerate(seq) if act in CLINICAL]  # fmt: skip
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
    sessions = pl.DataFrame(work, orient="row", schema=RAW_SCHEMA)
    return log, frame, normalise_sessions(split_sessions(sessions))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--demo-practices", type=int, default=2)
    parser.add_argument("--demo-scale", default="medium")
    parser.add_argument("--contexts", type=int, default=2000, help="one-context predictions timed per path")
    parser.add_argument("--contention", type=int, default=2, help="busy processes for the loaded measurement")
    parser.add_argument(
        "--request-gap-ms", type=float, default=2.0, help="idle time before each timed request"
    )
    args = parser.parse_args()
    out = {"scale": scale(args.events, args.contexts, args.contention, args.request_gap_ms / 1000)}
    print(json.dumps(out["scale"]), flush=True)
    raw, appts, sessions = demo_world(args.demo_practices, args.demo_scale)
    log = normalise(raw, LogColumns("case_id", "activity", "timestamp", ("species", "appointment_type")))
    for name, cases in (("demo_next_action", log), ("demo_next_action_work_session", sessions)):
        report, _ = evaluate_next_action(cases)
        report.pop("per_prefix_length")
        print(json.dumps({name: report}), flush=True)
    ns, _ = evaluate_no_show(appts)
    for k in ("model", "history_baseline"):
        ns[k].pop("calibration")
    print(json.dumps({"demo_no_show": ns}), flush=True)
    print(json.dumps({"peak_rss_mb": round(rss_mb())}))


if __name__ == "__main__":
    main()
