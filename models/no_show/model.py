"""No-show risk: the probability that a booked appointment is missed.

Input: an appointment frame (``warehouse.learning.eventlog.appointment_frame``) with ``practice_id``, ``appointment_id``,
``client_id``, ``appointment_type``, ``species``, ``booked_at``, ``starts_at`` (aware or UTC), ``status``.
Features per appointment: lead time, local weekday/hour, month (season), appointment type, species, practice,
and the client's history *before* the appointment starts (appointments, no-shows, cancellations, rates).

Model: histogram gradient boosting, calibrated with ``CalibratedClassifierCV`` (isotonic on enough data,
sigmoid on little), against a history-only logistic baseline. Evaluation: chronological split by start
time (the first 2/3 of the appointments with a known outcome train, :func:`holdout_cut`), ROC AUC, Brier score
and a calibration curve for both, and :func:`calibration` (observed against predicted per band of risk, and
the mean prediction against the base rate).

A risk is worth showing only where it says more than "this is an appointment": :func:`elevated` is a risk of
at least ``ELEVATED_FACTOR`` times the practice's base rate (its no-show rate in the training data, which the
calibrated model's mean prediction matches) and at least ``ELEVATED_FLOOR``. A fixed threshold near the base
rate (it was 15 %) fires on most bookings of a practice with many no-shows, so staff learn to ignore it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from models.runtime import limit_model_threads

KIND = "no_show"
LOCAL_TZ = "Europe/Amsterdam"
LABELLED = (
    "done",
    "no_show",
    "checked_in",
    "in_consult",
)  # cancelled: never a no-show; booked: not yet known
CATEGORICAL = ("appointment_type", "species", "practice")
NUMERIC = ("lead_days", "weekday", "hour", "month", "prior_appts", "prior_no_shows", "prior_cancels",
           "no_show_rate", "cancel_rate", "days_since_last")  # fmt: skip
HISTORY = ("prior_appts", "prior_no_shows", "no_show_rate")
ELEVATED_FACTOR = 2.0
ELEVATED_FLOOR = 0.10


def elevated(p_no_show: float, base_rate: float) -> bool:
    """Whether a risk is clearly above the practice's base rate (see the module's docstring)."""
    return p_no_show >= max(ELEVATED_FACTOR * base_rate, ELEVATED_FLOOR)


def features(appointments: pl.DataFrame) -> pl.DataFrame:
    """Add the feature columns. History uses only appointments of the same client that started earlier."""
    frame = appointments.with_columns(
        starts_local=_local(pl.col("starts_at")),
        booked_utc=_utc(pl.col("booked_at")),
        starts_utc=_utc(pl.col("starts_at")),
    ).sort(["client_id", "starts_utc", "appointment_id"], nulls_last=True)
    prior = pl.int_range(pl.len()).over("client_id")
    shifted = pl.col("starts_utc").shift(1).over("client_id")
    frame = frame.with_columns(
        lead_days=((pl.col("starts_utc") - pl.col("booked_utc")).dt.total_seconds() / 86400.0).clip(0, None),
        weekday=pl.col("starts_local").dt.weekday().cast(pl.Float64),
        hour=pl.col("starts_local").dt.hour().cast(pl.Float64) + pl.col("starts_local").dt.minute() / 60.0,
        month=pl.col("starts_local").dt.month().cast(pl.Float64),
        prior_appts=prior.cast(pl.Float64),
        prior_no_shows=(pl.col("status") == "no_show")
        .cast(pl.Float64)
        .cum_sum()
        .shift(1, fill_value=0)
        .over("client_id"),
        prior_cancels=(pl.col("status") == "cancelled")
        .cast(pl.Float64)
        .cum_sum()
        .shift(1, fill_value=0)
        .over("client_id"),
        days_since_last=((pl.col("starts_utc") - shifted).dt.total_seconds() / 86400.0),
    )
    no_client = pl.col("client_id").is_null()
    return frame.with_columns(
        *(
            pl.when(no_client).then(0.0).otherwise(pl.col(c)).alias(c)
            for c in ("prior_appts", "prior_no_shows", "prior_cancels")
        ),  # fmt: skip
    ).with_columns(
        no_show_rate=(pl.col("prior_no_shows") + 0.1) / (pl.col("prior_appts") + 2.0),
        cancel_rate=(pl.col("prior_cancels") + 0.1) / (pl.col("prior_appts") + 2.0),
        appointment_type=pl.col("appointment_type").cast(pl.String).fill_null(""),
        species=pl.col("species").cast(pl.String).fill_null(""),
        practice=pl.col("practice_id").cast(pl.String),
    )


def _utc(col: pl.Expr) -> pl.Expr:
    return col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)


def _local(col: pl.Expr) -> pl.Expr:
    return col.dt.convert_time_zone(LOCAL_TZ)


def _aware(frame: pl.DataFrame) -> pl.DataFrame:
    """Naive timestamps are taken as UTC."""
    out = frame
    for name in ("booked_at", "starts_at"):
        dtype = out.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            out = out.with_columns(pl.col(name).dt.replace_time_zone("UTC"))
    return out


@dataclass
class NoShowModel:
    vocab: dict[str, list[str]]
    estimator: Any  # CalibratedClassifierCV over HistGradientBoosting
    baseline: Any  # LogisticRegression over the history features
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, appointments: pl.DataFrame, *, seed: int = 0) -> NoShowModel:
        started = time.perf_counter()
        frame = labelled(features(_aware(appointments)))
        if frame.height < 20 or frame["no_show"].n_unique() < 2:
            raise ValueError("too few labelled appointments (or no no-shows at all) to train a no-show model")
        vocab = {c: sorted(set(frame[c].to_list()))[:254] for c in CATEGORICAL}
        model = cls(vocab, None, None)
        x, y = model.matrix(frame), frame["no_show"].to_numpy()
        positives = int(y.sum())
        folds = max(2, min(5, positives // 10, len(y) - positives))
        hgb = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=min_leaf(len(y), folds),
            l2_regularization=1.0, categorical_features=[True] * len(CATEGORICAL) + [False] * len(NUMERIC),
            random_state=seed,
        )  # fmt: skip
        method = "isotonic" if positives >= 200 else "sigmoid"
        limit_model_threads()
        model.estimator = CalibratedClassifierCV(hgb, method=method, cv=folds).fit(x, y)
        model.baseline = LogisticRegression(max_iter=500).fit(history_matrix(frame), y)
        rates = frame.group_by("practice").agg(pl.col("no_show").mean())
        model.info = {"train_rows": frame.height, "train_no_shows": positives, "calibration": method,
                      "base_rates": {r["practice"]: round(r["no_show"], 5) for r in rates.iter_rows(named=True)},
                      "train_seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
        return model

    def base_rate(self, practice_id: int | None = None) -> float:
        """The no-show rate among the training data's labelled appointments of the practice (of all practices
        for one the model has not seen, and for models stored before per-practice rates were kept)."""
        rates = self.info.get("base_rates") or {}
        overall = self.info["train_no_shows"] / self.info["train_rows"]
        return float(rates.get(str(practice_id), overall))

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        cats = [
            frame[c].replace_strict(
                {v: i for i, v in enumerate(self.vocab[c])}, default=254, return_dtype=pl.Float64
            )
            for c in CATEGORICAL
        ]
        nums = [frame[c].cast(pl.Float64) for c in NUMERIC]
        return pl.DataFrame([*cats, *nums]).fill_null(np.nan).to_numpy()

    def predict(self, appointments: pl.DataFrame, *, history: pl.DataFrame | None = None) -> pl.DataFrame:
        """``appointment_id`` → ``p_no_show`` for the appointments in ``appointments`` (their clients' earlier
        appointments may be passed in ``history`` or included in ``appointments``)."""
        wanted = appointments["appointment_id"]
        rows = appointments if history is None else pl.concat([appointments, history], how="diagonal_relaxed")
        frame = features(_aware(rows.unique(["practice_id", "appointment_id"]))).filter(
            pl.col("appointment_id").is_in(wanted.implode())
        )
        limit_model_threads()
        p = self.estimator.predict_proba(self.matrix(frame))[:, 1] if frame.height else np.array([])
        return frame.select("practice_id", "appointment_id").with_columns(
            p_no_show=pl.Series(p, dtype=pl.Float64)
        )

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "info": self.info}

    def estimators(self) -> dict[str, Any]:
        return {"model": self.estimator, "baseline": self.baseline}

    @classmethod
    def from_parts(cls, estimators: Mapping[str, Any], state: Mapping[str, Any]) -> NoShowModel:
        return cls({k: list(v) for k, v in state["vocab"].items()}, estimators["model"], estimators["baseline"],
                   dict(state.get("info", {})))  # fmt: skip


def min_leaf(rows: int, folds: int) -> int:
    """The trees' smallest leaf: 40 appointments, but at most a tenth of what each calibration fold trains on
    (at least 5). A fixed 40 on a practice with ~150 labelled appointments (2 folds of ~75) left no split with
    40 on both sides: every tree was a stump at the base rate, and the model ignored the client's own no-shows
    (5 % without, ~30 % with one)."""
    return max(5, min(40, rows * (folds - 1) // folds // 10))


def holdout_cut(appointments: pl.DataFrame, train_fraction: float = 2 / 3) -> Any:
    """The start time that splits the appointments whose outcome is known (``LABELLED``) chronologically:
    the first ``train_fraction`` of them train, the rest are the holdout. Appointments still to come (booked,
    weeks ahead in a live agenda) and cancellations have no outcome: counting them in the split moved the cut
    towards the future and shrank the holdout of appointments that can be scored."""
    known = appointments.filter(pl.col("status").is_in(LABELLED)).sort("starts_at")
    if known.height == 0:
        raise ValueError("no appointments with a known outcome (done, no-show, checked in) to split")
    return known["starts_at"][min(int(known.height * train_fraction), known.height - 1)]


def labelled(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("status").is_in(LABELLED)).with_columns(
        no_show=(pl.col("status") == "no_show").cast(pl.Int8)
    )


def history_matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(HISTORY).cast(pl.Float64).to_numpy()


def evaluate_no_show(
    appointments: pl.DataFrame, *, train_fraction: float = 2 / 3, bins: int = 10
) -> tuple[dict[str, Any], NoShowModel]:
    """Chronological split by start time (:func:`holdout_cut`); metrics of the model and of the history-only
    baseline on the test part."""
    appointments = _aware(appointments).sort("starts_at")
    cut = holdout_cut(appointments, train_fraction)
    started = time.perf_counter()
    model = NoShowModel.fit(appointments.filter(pl.col("starts_at") < cut))
    train_seconds = time.perf_counter() - started
    # Test rows keep their full history (training-period appointments count as history, not as test rows).
    test = labelled(features(appointments)).filter(pl.col("starts_at") >= cut)
    y = test["no_show"].to_numpy()
    if len(set(y.tolist())) < 2:
        raise ValueError("the test period has no no-shows (or only no-shows): cannot compute ROC AUC")
    limit_model_threads()
    p_model = model.estimator.predict_proba(model.matrix(test))[:, 1]
    p_base = model.baseline.predict_proba(history_matrix(test))[:, 1]
    report: dict[str, Any] = {
        "n_train": model.info["train_rows"], "n_test": len(y), "test_no_show_rate": round(float(y.mean()), 4),
        "split_at": str(cut), "train_seconds": round(train_seconds, 3), "calibration": model.info["calibration"],
    }  # fmt: skip
    for name, p in (("model", p_model), ("history_baseline", p_base)):
        frac_pos, mean_pred = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        report[name] = {
            "roc_auc": round(float(roc_auc_score(y, p)), 4),
            "brier": round(float(brier_score_loss(y, p)), 5),
            "mean_predicted": round(float(p.mean()), 4),
            "calibration": {
                "mean_predicted": [round(float(v), 4) for v in mean_pred],
                "observed": [round(float(v), 4) for v in frac_pos],
            },  # fmt: skip
        }
        report[name]["calibration_check"] = calibration(y, p)
    report["brier_climatology"] = round(float(brier_score_loss(y, np.full(len(y), y.mean()))), 5)
    report["train_no_show_rate"] = round(model.base_rate(), 4)
    return report, model


def calibration(y: np.ndarray, p: np.ndarray, bands: int = 5) -> dict[str, Any]:
    """Observed against predicted no-show rate in ``bands`` equal-sized bands of predicted risk.

    ``error`` is the mean gap between observed and predicted, weighted by the band sizes (the expected
    calibration error); ``mean_predicted`` against ``observed_rate`` is the same question for all rows at once
    (is the model's average risk the base rate?), and ``z`` is that gap in standard errors of the observed rate
    (binomial, so a small holdout is judged by what it can tell)."""
    order = np.argsort(p, kind="stable")
    rows = []
    for part in np.array_split(order, min(bands, len(p))):
        rows.append({"n": len(part), "mean_predicted": round(float(p[part].mean()), 4),
                     "observed": round(float(y[part].mean()), 4)})  # fmt: skip
    rate, mean_p = float(y.mean()), float(p.mean())
    se = max(np.sqrt(rate * (1 - rate) / len(y)), 1e-9)
    error = sum(r["n"] * abs(r["observed"] - r["mean_predicted"]) for r in rows) / len(y)
    return {"bands": rows, "error": round(error, 4), "mean_predicted": round(mean_p, 4),
            "observed_rate": round(rate, 4), "z": round((mean_p - rate) / se, 2)}  # fmt: skip
