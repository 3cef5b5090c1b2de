"""The no-show model on an appointment book whose no-show process is known (``models.no_show.synthetic``):
calibrated (observed against predicted per band of risk, the mean prediction at the base rate), and its
warning rare and meaningful (the appointments it flags miss clearly more often than the rest)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from models.no_show.model import ELEVATED_FLOOR, NoShowModel, calibration, elevated, features, labelled
from models.no_show.synthetic import appointment_book


def assert_calibrated(y: np.ndarray, p: np.ndarray, base_rate: float) -> None:
    """What "calibrated and informative" means for the no-show warning; shared with the warehouse test."""
    check = calibration(y, p)
    # Per band of predicted risk, the observed rate is close to the predicted one (weighted mean gap)…
    assert check["error"] <= 0.025, check
    # …and the mean prediction is the base rate, within what the holdout's size can tell.
    assert abs(check["z"]) <= 3.5, check
    # The warning is rare, and the appointments it flags miss clearly more often than the others.
    flagged = np.array([elevated(v, base_rate) for v in p])
    assert 0 < flagged.mean() <= 0.25, flagged.mean()
    assert y[flagged].mean() >= 1.5 * y[~flagged].mean(), (y[flagged].mean(), y[~flagged].mean())


@pytest.fixture(scope="module")
def holdout() -> tuple[NoShowModel, np.ndarray, np.ndarray]:
    """The model trained on the first two thirds of the book (by start), with the last third's labels and
    predicted risks."""
    book = appointment_book(seed=0).drop("p_true").sort("starts_at")
    cut = book["starts_at"][int(book.height * 2 / 3)]
    model = NoShowModel.fit(book.filter(pl.col("starts_at") < cut))
    test = labelled(features(book)).filter(pl.col("starts_at") >= cut)
    return model, test["no_show"].to_numpy(), model.estimator.predict_proba(model.matrix(test))[:, 1]


def test_the_model_is_calibrated_and_its_warning_is_rare_and_meaningful(holdout):
    model, y, p = holdout
    base_rate = model.base_rate(1)
    # The base rate is the training data's no-show rate, the level the calibrated model predicts on average.
    assert 0.05 < base_rate < 0.09 and abs(base_rate - model.base_rate()) < 1e-4
    assert_calibrated(y, p, base_rate)
    assert roc_auc_score(y, p) >= 0.62


@pytest.mark.parametrize(
    "constant",
    [0.5, 0.15, "base_rate"],  # a coin, the old always-firing level, and no information at all
)
def test_a_constant_predictor_fails_the_check(holdout, constant):
    model, y, _ = holdout
    value = model.base_rate(1) if constant == "base_rate" else constant
    with pytest.raises(AssertionError):
        assert_calibrated(y, np.full(len(y), value), model.base_rate(1))


def test_elevated_means_twice_the_base_rate_and_at_least_the_floor():
    assert elevated(0.16, 0.08) and not elevated(0.159, 0.08)
    # A practice with few no-shows: twice its rate is still no reason to call.
    assert not elevated(ELEVATED_FLOOR - 0.001, 0.02) and elevated(ELEVATED_FLOOR, 0.02)
