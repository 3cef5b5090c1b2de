"""Next-action model on a public-style log (BPI-like, integer codes, other column names): evaluation against
the baselines, the CLI, batch vs one-context features, artefacts that refuse tampering."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from models import artifacts
from models.eventlog import END, read_event_log
from models.next_action import NextActionModel, evaluate_next_action
from models.next_action.synthetic import COLUMNS, loan_log
from vetconnect.cli import app


@pytest.fixture(scope="module")
def loan_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "loans.csv"
    loan_log(450, seed=3).write_csv(path)
    return path


@pytest.fixture(scope="module")
def loan(loan_csv):
    return read_event_log(loan_csv, case_col=COLUMNS["case"], activity_col=COLUMNS["activity"],
                          time_col=COLUMNS["time"], attr_cols=COLUMNS["attrs"])  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(loan):
    return evaluate_next_action(loan)


def test_the_model_beats_both_baselines_on_the_public_style_log(evaluated):
    report, _ = evaluated
    assert report["top1"] > report["markov_top1"] > report["most_frequent_top1"]
    assert report["top3"] >= report["top1"]
    assert report["n_test_prefixes"] == sum(row["n"] for row in report["per_prefix_length"])
    assert report["per_prefix_length"][0]["prefix_len"] == 1


def test_every_prefix_is_scored_including_case_end(loan, evaluated):
    _, model = evaluated
    prefixes = model.encoder.prefixes(loan)
    assert prefixes.height == loan.height  # one prefix per event: lengths 1..n
    assert (prefixes["target"] == END).sum() == loan["case_id"].n_unique()


def test_one_context_features_equal_the_batch_features(loan, evaluated):
    _, model = evaluated
    prefixes = model.encoder.prefixes(loan)
    batch = model.encoder.matrix(prefixes)
    rows = {
        (c, int(n)): i
        for i, (c, n) in enumerate(zip(prefixes["case_id"], prefixes["prefix_len"], strict=True))
    }
    for case_id in loan["case_id"].unique().sort()[:25]:
        case = loan.filter(pl.col("case_id") == case_id).sort("seq")
        for n in range(1, case.height + 1):
            attrs = {a: case[f"attr_{a}"][n - 1] for a in COLUMNS["attrs"]}
            one = model.encoder.context_vector(
                case["activity"][:n].to_list(), case["timestamp"][:n].to_list(), attrs
            )
            np.testing.assert_allclose(one, batch[rows[(case_id, n)]], equal_nan=True)


def test_suggest_returns_ranked_probabilities(loan, evaluated):
    _, model = evaluated
    case = loan.filter(pl.col("case_id") == loan["case_id"][0]).sort("seq").head(3)
    top = model.suggest(case["activity"].to_list(), case["timestamp"].to_list(), k=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert all(activity in model.classes for activity, _ in top)


def test_cli_prints_the_report_as_json(loan_csv, tmp_path):
    result = CliRunner().invoke(app, [
        "models", "evaluate-next-action", "--events", str(loan_csv), "--case-col", COLUMNS["case"],
        "--activity-col", COLUMNS["activity"], "--time-col", COLUMNS["time"],
        "--attr-cols", ",".join(COLUMNS["attrs"]), "--save", str(tmp_path / "model"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("top1", "top3", "markov_top1", "most_frequent_top1", "n_test_prefixes", "train_seconds"):
        assert key in report
    assert report["top1"] > report["markov_top1"]
    artifact = artifacts.read_dir(tmp_path / "model")
    assert artifact.sha256 == report["artifact_sha256"]
    model = NextActionModel.from_parts(artifacts.load_estimator(artifact, kind="next_action"), artifact.state)
    assert model.classes


def test_cli_fails_with_one_clear_line_on_a_malformed_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("case,act,time\n1,5,2024-01-01 10:00\n1,6,not a time\n")
    result = CliRunner().invoke(app, ["models", "evaluate-next-action", "--events", str(bad), "--case-col", "case",
                                      "--activity-col", "act", "--time-col", "time"])  # fmt: skip
    assert result.exit_code == 1
    assert "cannot read 'not a time' (data row 2) as a timestamp" in result.output
    assert "Traceback" not in result.output


def test_a_tampered_artefact_is_refused(evaluated, tmp_path):
    _, model = evaluated
    artifact = artifacts.build("next_action", model.estimator, model.state(), {"purpose": "test"})
    directory = artifacts.save_dir(artifact, tmp_path / "a")
    assert artifacts.load_estimator(artifacts.read_dir(directory), artifact.sha256) is not None
    blob = bytearray((directory / "model.skops").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (directory / "model.skops").write_bytes(bytes(blob))
    with pytest.raises(artifacts.TamperedArtifact, match="refusing to load"):
        artifacts.load_estimator(artifacts.read_dir(directory))
    # Changing the state (e.g. the class list) is caught as well, even with the file's own hash rewritten.
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["state"]["classes"].reverse()
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "model.skops").write_bytes(artifact.blob)
    with pytest.raises(artifacts.TamperedArtifact):
        artifacts.load_estimator(artifacts.read_dir(directory), expected_sha256=artifact.sha256)


def test_one_context_prediction_equals_scikit_learn_on_every_prefix(loan, evaluated):
    """The app's flat-array trees give scikit-learn's probabilities: on every prefix of the log, after a skops
    round trip (first 1,200 prefixes), and with values the training never saw (unknown activity and attribute codes, missing)."""
    _, trained = evaluated
    artifact = artifacts.build("next_action", trained.estimator, trained.state(), {})
    model = NextActionModel.from_parts(artifacts.load_estimator(artifact, kind="next_action"), artifact.state)
    assert model.forest is not None
    x = model.encoder.matrix(model.encoder.prefixes(loan))[:1200]
    odd = x[:200].copy()
    odd[:50, 0] = len(model.encoder.activities)  # the "unseen activity" code
    odd[50:100, model.encoder.k + 5] = 250.0  # an attribute code never seen in training
    odd[100:150, 1:3] = np.nan  # shorter prefix: missing previous activities
    odd[150:, model.encoder.k + 1] = 1e6  # far outside every numeric threshold
    for rows in (x, odd):
        expected = model.estimator.predict_proba(rows)
        got = np.array([model.forest.predict_proba_one(row) for row in rows])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_one_context_prediction_of_a_two_class_model(loan):
    """Two outcomes (the logistic link instead of softmax): one activity, so "again" or "case ends"."""
    two = loan.with_columns(activity=pl.lit("step"))
    model = NextActionModel.fit(two, max_iter=15)
    assert model.classes == sorted(["step", END]) and model.forest is not None
    x = model.encoder.matrix(model.encoder.prefixes(two))[:300]
    got = np.array([model.forest.predict_proba_one(row) for row in x])
    np.testing.assert_allclose(got, model.estimator.predict_proba(x), rtol=0, atol=1e-12)
