"""The next-action model: histogram gradient boosting over prefix features (see ``features.py``).

Why this model: on the care-episode logs and on BPI-like logs it beats the Markov baseline by using what the
Markov chain cannot see — the activities before the last one, elapsed time, the weekday/hour and the case
attributes — while training in seconds on a million events and answering one context in well under a
millisecond (the trees are evaluated in flat numpy arrays for a single context, see ``forest.py``).
The figures that back this are in ``bench/models.py`` and ``notebooks/model_evaluation.ipynb``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier

from models.next_action.features import PrefixEncoder
from models.next_action.forest import FlatForest, compile_forest
from models.runtime import limit_model_threads

KIND = "next_action"


@dataclass
class NextActionModel:
    encoder: PrefixEncoder
    estimator: HistGradientBoostingClassifier | DummyClassifier
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    # The trees in flat arrays for one-context prediction (see ``forest.py``); None for a dummy model.
    forest: FlatForest | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.forest = compile_forest(self.estimator)

    @classmethod
    def fit(
        cls,
        log: pl.DataFrame,
        *,
        k: int = 5,
        max_iter: int = 60,
        max_train_prefixes: int = 400_000,
        seed: int = 0,
    ) -> NextActionModel:
        """Train on every prefix of ``log`` (a normalised log, see ``models.eventlog``); at most
        ``max_train_prefixes`` prefixes, sampled uniformly, so that training time stays bounded."""
        started = time.perf_counter()
        encoder = PrefixEncoder.fit(log, k=k)
        prefixes = encoder.prefixes(log)
        if prefixes.height > max_train_prefixes:
            prefixes = prefixes.sample(max_train_prefixes, seed=seed)
        classes = sorted(set(prefixes["target"].to_list()))
        y = prefixes["target"].replace_strict({c: i for i, c in enumerate(classes)}, return_dtype=pl.Int32)
        estimator = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=0.15,
            max_leaf_nodes=31,
            min_samples_leaf=20,
            l2_regularization=1.0,
            categorical_features=encoder.categorical_mask,
            early_stopping=prefixes.height > 20_000,
            random_state=seed,
        )
        if len(classes) == 1:  # degenerate log: every prefix has the same successor
            estimator = DummyClassifier(strategy="most_frequent")
        limit_model_threads()
        estimator.fit(encoder.matrix(prefixes), y.to_numpy())
        info = {"train_prefixes": prefixes.height, "train_seconds": round(time.perf_counter() - started, 3)}
        return cls(encoder, estimator, classes, info)

    def proba(self, x: np.ndarray) -> np.ndarray:
        limit_model_threads()
        return self.estimator.predict_proba(x)

    def top_k(self, x: np.ndarray, k: int = 3) -> list[list[str]]:
        proba = self.proba(x)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[self.classes[i] for i in row] for row in order]

    def suggest(
        self,
        activities: Sequence[str],
        timestamps: Sequence[dt.datetime],
        attrs: Mapping[str, str] | None = None,
        k: int = 3,
    ) -> list[tuple[str, float]]:
        """Top ``k`` next activities (with probabilities) for one running case."""
        x = self.encoder.context_vector(activities, timestamps, attrs)
        proba = self.forest.predict_proba_one(x) if self.forest is not None else self.proba(x[None, :])[0]
        order = np.argsort(-proba, kind="stable")[:k]
        return [(self.classes[i], float(proba[i])) for i in order]

    # --- persistence (see models.artifacts) --------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"encoder": self.encoder.state(), "classes": self.classes, "info": self.info}

    @classmethod
    def from_parts(cls, estimator: Any, state: Mapping[str, Any]) -> NextActionModel:
        return cls(PrefixEncoder.from_state(state["encoder"]), estimator, list(state["classes"]),
                   dict(state.get("info", {})))  # fmt: skip
