"""One-row prediction for a fitted ``HistGradientBoostingClassifier``, in well under a millisecond.

Why: scikit-learn's ``predict_proba`` is built for batches. For one row it spends ~1 ms validating the input
and then calls one Cython routine per tree (iterations x classes, e.g. 45 x 12 = 540 calls of ~2.5 us each);
measured at 4.3 ms p50 for the hub's single context, and several times that in the tail when the 2 cores are
shared. Here every tree of the ensemble is one slice of flat node arrays, and all trees descend together: one
vectorised numpy step per tree level (at most the ensemble's depth, ~20 steps), whatever the number of trees.

The routing rules are scikit-learn's (``_predictor.pyx``, ``_predict_one_from_raw_data``): NaN follows the
node's missing direction; a numeric value goes left when ``value <= threshold``; a categorical value goes left
when it is in the node's left-category bitset, right when it is a category seen in training, and otherwise
(unknown or negative) follows the missing direction. The leaf values of each class are summed onto the
baseline and turned into probabilities by the model's link (softmax, or the logistic for two classes).
``tests/models/test_models_next_action.py`` checks that the probabilities equal ``predict_proba`` on every
prefix of a held-out log, so a scikit-learn upgrade that changes the tree layout fails there, not in the app.

Built from private attributes of the estimator (``_predictors``, ``_bin_mapper``, ``_baseline_prediction``);
:func:`compile_forest` returns ``None`` for anything it does not recognise and callers then use
``predict_proba``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.preprocessing import OrdinalEncoder


@dataclass(frozen=True)
class FlatForest:
    roots: np.ndarray  # (n_trees,) node index of each tree's root
    tree_class: np.ndarray  # (n_trees,) the class (raw-prediction column) each tree adds to
    is_leaf: np.ndarray  # per node, over all trees
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    is_categorical: np.ndarray
    category_row: np.ndarray  # per categorical node: its row in ``category_goes_left``
    category_goes_left: np.ndarray  # (rows, 256) bool: where each category code goes at that node
    value: np.ndarray
    baseline: np.ndarray  # (n_classes_raw,)
    depth: int
    # The estimator's own input encoding (see :func:`_input_encoding`): the trees see the categorical columns
    # first, each value replaced by its index among the categories seen in training (unseen → NaN).
    categorical_columns: np.ndarray
    numeric_columns: np.ndarray
    categories: np.ndarray  # (n_categorical, max categories) training categories, padded with NaN

    def encode(self, x: np.ndarray) -> np.ndarray:
        raw = x[self.categorical_columns]
        hits = self.categories == raw[:, None]
        codes = np.where(hits.any(axis=1), hits.argmax(axis=1), np.nan)
        return np.concatenate([codes, x[self.numeric_columns]])

    def predict_proba_one(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for one feature row ``x`` (1-D, float, NaN for missing), as ``predict_proba``."""
        x = self.encode(np.asarray(x, dtype=np.float64))
        nodes = self.roots.copy()
        active = np.arange(nodes.size)  # trees not yet at a leaf
        for _ in range(self.depth + 1):
            active = active[~self.is_leaf[nodes[active]]]
            if active.size == 0:
                break
            at = nodes[active]
            values = x[self.feature[at]]
            missing = np.isnan(values)
            codes = np.clip(np.where(missing, 0.0, values), 0, 255).astype(np.intp)
            go_left = np.where(
                missing,
                self.missing_left[at],
                np.where(
                    self.is_categorical[at],
                    self.category_goes_left[self.category_row[at], codes],
                    values <= self.threshold[at],
                ),
            )
            nodes[active] = np.where(go_left, self.left[at], self.right[at])
        raw = self.baseline + np.bincount(
            self.tree_class, weights=self.value[nodes], minlength=self.baseline.size
        )
        if raw.size == 1:  # binary: logistic link on the positive class
            positive = 1.0 / (1.0 + np.exp(-raw[0]))
            return np.array([1.0 - positive, positive])
        exp = np.exp(raw - raw.max())
        return exp / exp.sum()


def _in_bitset(bitset: np.ndarray) -> np.ndarray:
    """The 256 membership flags of scikit-learn's 8 x 32-bit category bitset."""
    codes = np.arange(256)
    return ((bitset[codes >> 5] >> (codes & 31).astype(np.uint32)) & 1).astype(bool)


def compile_forest(estimator: Any) -> FlatForest | None:
    """The flat form of a fitted ``HistGradientBoostingClassifier`` fed with a numeric array; else ``None``."""
    if not isinstance(estimator, HistGradientBoostingClassifier) or not hasattr(estimator, "_predictors"):
        return None
    encoding = _input_encoding(estimator)
    if encoding is None:
        return None
    known_bitsets, feature_to_known_row = estimator._bin_mapper.make_known_categories_bitsets()
    known = [_in_bitset(np.asarray(b, dtype=np.uint32)) for b in known_bitsets]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("leaf", "feature", "threshold", "left", "right",
                                                          "missing", "categorical", "row", "value")}  # fmt: skip
    roots, tree_class = [], []
    # Row 0 is unused (numeric nodes point at it); then one row per categorical split node.
    goes_left = [np.zeros(256, dtype=bool)]
    offset, depth = 0, 0
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            categorical = nodes["is_categorical"].astype(bool) & ~leaf
            rows = np.zeros(len(nodes), dtype=np.int64)
            bitsets = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
            for i in np.flatnonzero(categorical):
                node = nodes[i]
                in_left = _in_bitset(bitsets[node["bitset_idx"]])
                seen = known[feature_to_known_row[node["feature_idx"]]]
                # scikit-learn: left-set → left; another known category → right; unknown → the missing side
                rows[i] = len(goes_left)
                goes_left.append(in_left | (~seen & bool(node["missing_go_to_left"])))
            parts["leaf"].append(leaf)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["missing"].append(nodes["missing_go_to_left"].astype(bool))
            parts["categorical"].append(categorical)
            parts["row"].append(rows)
            parts["value"].append(nodes["value"].astype(np.float64))
            roots.append(offset)
            tree_class.append(k)
            depth = max(depth, int(nodes["depth"].max()))
            offset += len(nodes)
    if not roots:
        return None
    joined = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return FlatForest(
        roots=np.asarray(roots, dtype=np.int64),
        tree_class=np.asarray(tree_class, dtype=np.int64),
        is_leaf=joined["leaf"],
        feature=joined["feature"],
        threshold=joined["threshold"],
        left=joined["left"],
        right=joined["right"],
        missing_left=joined["missing"],
        is_categorical=joined["categorical"],
        category_row=joined["row"],
        category_goes_left=np.vstack(goes_left),
        value=joined["value"],
        baseline=np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel(),
        depth=depth,
        categorical_columns=encoding[0],
        numeric_columns=encoding[1],
        categories=encoding[2],
    )


def _input_encoding(estimator: HistGradientBoostingClassifier) -> tuple[np.ndarray, ...] | None:
    """Categorical column indices, numeric column indices and the padded training categories of the
    estimator's preprocessor (an ``OrdinalEncoder`` on the categorical columns placed first, the numeric
    columns passed through); ``None`` for a layout this module does not know."""
    n_features = int(estimator.n_features_in_)
    preprocessor = getattr(estimator, "_preprocessor", None)
    if preprocessor is None:  # no categorical features: the columns are used as they are
        return np.array([], dtype=np.int64), np.arange(n_features), np.zeros((0, 1))
    steps = {name: (step, columns) for name, step, columns in preprocessor.transformers_}
    if set(steps) - {"encoder", "numerical", "remainder"} or "encoder" not in steps:
        return None
    if (
        not isinstance(steps["encoder"][0], OrdinalEncoder)
        or preprocessor.output_indices_["encoder"].start != 0
    ):
        return None

    def indices(columns: Any) -> np.ndarray:
        columns = np.asarray(columns)
        return np.flatnonzero(columns) if columns.dtype == bool else columns.astype(np.int64)

    categorical = indices(steps["encoder"][1])
    numeric = indices(steps["numerical"][1]) if "numerical" in steps else np.array([], dtype=np.int64)
    if categorical.size + numeric.size != n_features:
        return None
    found = steps["encoder"][0].categories_
    categories = np.full((len(found), max(len(c) for c in found)), np.nan)
    for row, values in enumerate(found):
        categories[row, : len(values)] = np.asarray(values, dtype=np.float64)
    return categorical, numeric, categories
