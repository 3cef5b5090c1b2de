"""Evaluation as in the predictive-process-monitoring literature.

Cases are split chronologically by start time (first 2/3 train, last 1/3 test); the model predicts at every
prefix length >= 1 of every test case, including "case ends" after the last event. Reported: top-1 and top-3
accuracy overall and per prefix length, for the model and both baselines.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from models.eventlog import chronological_split
from models.next_action.baselines import MarkovBaseline, MostFrequentBaseline
from models.next_action.model import NextActionModel


def _last_activity(prefixes_of: pl.DataFrame) -> pl.Series:
    return prefixes_of.sort(["case_id", "seq"])["activity"]


def _hits(truth: list[str], ranked: list[list[str]], k: int) -> np.ndarray:
    return np.array([t in r[:k] for t, r in zip(truth, ranked, strict=True)], dtype=bool)


def evaluate_next_action(
    log: pl.DataFrame,
    *,
    train_fraction: float = 2 / 3,
    model_kwargs: dict[str, Any] | None = None,
    per_prefix_max: int = 20,
) -> tuple[dict[str, Any], NextActionModel]:
    """Split, train on the first part, score on the rest. Returns the JSON-ready report and the model."""
    train, test = chronological_split(log, train_fraction)
    started = time.perf_counter()
    model = NextActionModel.fit(train, **(model_kwargs or {}))
    train_seconds = time.perf_counter() - started
    report = score(model, train, test, per_prefix_max=per_prefix_max)
    report["train_seconds"] = round(train_seconds, 3)
    report["n_train_cases"] = train["case_id"].n_unique()
    report["n_test_cases"] = test["case_id"].n_unique()
    report["data_window"] = [str(log["timestamp"].min()), str(log["timestamp"].max())]
    return report, model


def score(
    model: NextActionModel, train: pl.DataFrame, test: pl.DataFrame, *, per_prefix_max: int = 20
) -> dict[str, Any]:
    """Top-1/top-3 of ``model`` and of both baselines (fit on ``train``) on every prefix of ``test``."""
    train_prefixes = model.encoder.prefixes(train)
    markov = MarkovBaseline().fit(train_prefixes, _last_activity(train))
    frequent = MostFrequentBaseline().fit(train_prefixes)
    prefixes = model.encoder.prefixes(test)
    truth = prefixes["target"].to_list()
    last = _last_activity(test).to_list()
    ranked = {
        "model": model.top_k(model.encoder.matrix(prefixes), 3),
        "markov": markov.top_k(last, 3),
        "most_frequent": frequent.top_k(last, 3),
    }
    hits = {(m, k): _hits(truth, r, k) for m, r in ranked.items() for k in (1, 3)}
    lengths = prefixes["prefix_len"].to_numpy()
    per_prefix = []
    for length in sorted(set(lengths.tolist())):
        mask = lengths == length if length < per_prefix_max else lengths >= per_prefix_max
        if length > per_prefix_max:
            break
        per_prefix.append(
            {
                "prefix_len": f"{per_prefix_max}+" if length == per_prefix_max else int(length),
                "n": int(mask.sum()),
                "top1": _mean(hits["model", 1][mask]),
                "top3": _mean(hits["model", 3][mask]),
                "markov_top1": _mean(hits["markov", 1][mask]),
                "most_frequent_top1": _mean(hits["most_frequent", 1][mask]),
            }
        )
    return {
        "top1": _mean(hits["model", 1]),
        "top3": _mean(hits["model", 3]),
        "markov_top1": _mean(hits["markov", 1]),
        "markov_top3": _mean(hits["markov", 3]),
        "most_frequent_top1": _mean(hits["most_frequent", 1]),
        "most_frequent_top3": _mean(hits["most_frequent", 3]),
        "n_test_prefixes": len(truth),
        "n_activities": len(model.encoder.activities),
        "per_prefix_length": per_prefix,
    }


def _mean(values: np.ndarray) -> float:
    return round(float(values.mean()), 4) if len(values) else float("nan")
