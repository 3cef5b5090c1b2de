"""Prefix features for next-activity prediction.

Every event of a case closes one prefix (events ``0..i``); its label is the next activity of the case, or
:data:`~models.eventlog.END` after the last event. A prefix is described by:

- the last ``k`` activities (categorical codes; missing where the prefix is shorter than ``k``),
- the prefix length, hours since the case started and since the previous event,
- weekday and hour of the last event,
- the attributes of the last event (categorical codes),
- how often each of the most frequent activities occurred so far (bag of activities).

The batch path (polars, for training and evaluation) and the one-context path (numpy, for serving in a few
milliseconds) produce the same vector; a test checks that they agree row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.eventlog import END

# HistGradientBoosting takes categories 0..254: the 254 most frequent values keep their own code, the rest
# share code 254 ("other / unseen").
MAX_CATEGORIES = 254


def _vocab(values: pl.Series) -> list[str]:
    counts = values.value_counts(sort=True, name="n")
    counts = counts.sort(["n", values.name], descending=[True, False])
    return counts[values.name].head(MAX_CATEGORIES).to_list()


@dataclass
class PrefixEncoder:
    k: int = 5
    activities: list[str] = field(default_factory=list)
    attrs: dict[str, list[str]] = field(default_factory=dict)  # attribute (without "attr_") -> vocabulary
    counted: int = 0  # the first ``counted`` activities of the vocabulary get a count feature
    # First-order transition probabilities P(next | last activity) from the training log, one row per activity
    # code (plus "unseen"), one column per successor (the vocabulary, then END). Given as features, they let
    # the trees start from what the Markov baseline knows instead of having to rediscover it.
    transitions: list[list[float]] = field(default_factory=list)

    @classmethod
    def fit(cls, log: pl.DataFrame, *, k: int = 5, max_counted: int = 40) -> PrefixEncoder:
        acts = _vocab(log["activity"])
        attrs = {c.removeprefix("attr_"): _vocab(log[c]) for c in log.columns if c.startswith("attr_")}
        encoder = cls(k=k, activities=acts, attrs=attrs, counted=min(max_counted, len(acts)))
        index = {a: i for i, a in enumerate(acts)}
        counts = np.ones((len(acts) + 1, len(acts) + 1))  # Laplace smoothing
        pairs = log.sort(["case_id", "seq"]).select(
            last=pl.col("activity"), nxt=pl.col("activity").shift(-1).over("case_id").fill_null(END)
        )
        for last, nxt, n in pairs.group_by(["last", "nxt"]).len().iter_rows():
            row = index.get(last, len(acts))
            counts[row, index.get(nxt, len(acts)) if nxt != END else len(acts)] += n
        encoder.transitions = (counts / counts.sum(axis=1, keepdims=True)).round(6).tolist()
        return encoder

    # --- description -------------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [
            *(f"last_{j}" for j in range(self.k)),
            "prefix_len",
            "hours_since_start",
            "hours_since_prev",
            "weekday",
            "hour",
            *(f"attr_{a}" for a in self.attrs),
            *(f"count_{a}" for a in self.activities[: self.counted]),
            *(
                f"p_next_{a}"
                for a in [*self.activities, END][: len(self.transitions[0]) if self.transitions else 0]
            ),
        ]

    @property
    def categorical_mask(self) -> np.ndarray:
        n_attr = len(self.attrs)
        n_markov = len(self.transitions[0]) if self.transitions else 0
        return np.array([True] * self.k + [False] * 5 + [True] * n_attr + [False] * (self.counted + n_markov))

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "activities": self.activities, "attrs": self.attrs, "counted": self.counted,
                "transitions": self.transitions}  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PrefixEncoder:
        return cls(k=int(state["k"]), activities=list(state["activities"]),
                   attrs={k: list(v) for k, v in state["attrs"].items()}, counted=int(state["counted"]),
                   transitions=[list(r) for r in state.get("transitions", [])])  # fmt: skip

    # --- batch -------------------------------------------------------------------------------------------
    def _codes(self, column: pl.Expr, vocab: list[str]) -> pl.Expr:
        mapping = {v: i for i, v in enumerate(vocab)}
        return column.replace_strict(mapping, default=len(vocab), return_dtype=pl.Int32)

    def prefixes(self, log: pl.DataFrame) -> pl.DataFrame:
        """One row per prefix: ``case_id``, ``prefix_len``, ``target`` (next activity or END) and features."""
        by_case = log.sort(["case_id", "seq"])
        code = self._codes(pl.col("activity"), self.activities).alias("_code")
        ts = pl.col("timestamp")
        frame = by_case.with_columns(code).with_columns(
            target=pl.col("activity").shift(-1).over("case_id").fill_null(END),
            prefix_len=(pl.col("seq") + 1).cast(pl.Float64),
            hours_since_start=(ts - ts.first().over("case_id")).dt.total_seconds() / 3600.0,
            hours_since_prev=((ts - ts.shift(1).over("case_id")).dt.total_seconds() / 3600.0).fill_null(0.0),
            weekday=(ts.dt.weekday() - 1).cast(pl.Float64),
            hour=ts.dt.hour().cast(pl.Float64) + ts.dt.minute().cast(pl.Float64) / 60.0,
            **{f"last_{j}": pl.col("_code").shift(j).over("case_id").cast(pl.Float64) for j in range(self.k)},
            **{
                f"attr_{a}": self._codes(pl.col(f"attr_{a}"), vocab).cast(pl.Float64)
                for a, vocab in self.attrs.items()
            },
            **{
                f"count_{a}": (pl.col("_code") == i).cast(pl.Float64).cum_sum().over("case_id")
                for i, a in enumerate(self.activities[: self.counted])
            },
        )
        base = [n for n in self.feature_names if not n.startswith("p_next_")]
        return frame.select("case_id", "target", *base).with_columns(pl.col("prefix_len").cast(pl.Int32))

    def matrix(self, prefixes: pl.DataFrame) -> np.ndarray:
        base = [n for n in self.feature_names if not n.startswith("p_next_")]
        x = prefixes.select(base).cast(pl.Float64).fill_null(np.nan).to_numpy()
        if not self.transitions:
            return x
        last = prefixes["last_0"].cast(pl.Int64).to_numpy()
        return np.hstack([x, np.asarray(self.transitions)[last]])

    # --- one context -------------------------------------------------------------------------------------
    def context_vector(
        self,
        activities: Sequence[str],
        timestamps: Sequence[dt.datetime],
        attrs: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        """The features of one running case (its events so far, oldest first); attributes of the last event."""
        if not activities or len(activities) != len(timestamps):
            raise ValueError("a context needs at least one event, with one timestamp per activity")
        index = {a: i for i, a in enumerate(self.activities)}
        unknown = len(self.activities)
        codes = [index.get(str(a), unknown) for a in activities]
        row = np.full(len(self.feature_names), np.nan)
        for j in range(min(self.k, len(codes))):
            row[j] = codes[-1 - j]
        last, first = timestamps[-1], timestamps[0]
        prev = timestamps[-2] if len(timestamps) > 1 else last
        base = self.k
        row[base] = len(codes)
        row[base + 1] = (last - first).total_seconds() / 3600.0
        row[base + 2] = (last - prev).total_seconds() / 3600.0
        row[base + 3] = last.weekday()
        row[base + 4] = last.hour + last.minute / 60.0
        base += 5
        attrs = attrs or {}
        for i, (name, vocab) in enumerate(self.attrs.items()):
            value = attrs.get(name, "")
            row[base + i] = vocab.index(value) if value in vocab else len(vocab)
        base += len(self.attrs)
        if self.counted:
            counts = np.bincount([c for c in codes if c < self.counted], minlength=self.counted)
            row[base : base + self.counted] = counts
        base += self.counted
        if self.transitions:
            row[base:] = self.transitions[codes[-1]]
        return row
