"""The patient card shows the suggestions the next-action model gives for that patient, in Dutch percentages;
and every action the model can suggest opens a workspace that exists in the navigation."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

from dashboard.components.pages import OPENS
from dashboard.components.suggestions import ACTION_OPENS
from models import artifacts, serving
from models.eventlog import LogColumns, normalise
from models.next_action import NextActionModel
from models.training import CARE_ATTRS
from tests.practice_world import RECEPTIONIST, sign_in
from warehouse.kernel import formatting as fmt
from warehouse.kernel.tenancy import AccessContext
from warehouse.learning import model_store
from warehouse.search.service import SearchHit

# Care episodes after a booking: most are attended, some missed; an attended consult ends in one of three ways.
ROUTES = (
    (["booking_made", "check_in", "consult", "diagnosis", "invoice", "payment"], 45),
    (["booking_made", "check_in", "consult", "vaccination", "invoice", "payment"], 25),
    (["booking_made", "check_in", "consult", "prescription", "invoice", "payment"], 15),
    (["booking_made", "no_show"], 12),
    (["booking_made", "cancelled"], 3),
)


def _care_log(episodes: int = 400, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 6, 9, tzinfo=dt.UTC)
    rows = []
    for case in range(episodes):
        route = rng.choices([r for r, _ in ROUTES], [w for _, w in ROUTES])[0]
        at = start + dt.timedelta(hours=case * 7)
        for step, activity in enumerate(route):
            rows.append({"case_id": f"{case}", "activity": activity, "at": at + dt.timedelta(minutes=20 * step),
                         "species": rng.choice(["dog", "cat"]), "appointment_type": "consult"})  # fmt: skip
    return normalise(pl.DataFrame(rows), LogColumns("case_id", "activity", "at", CARE_ATTRS))


def _promote_next_action_model(db, franchise_id: int) -> None:  # noqa: ANN001
    model = NextActionModel.fit(_care_log())
    built = artifacts.build("next_action", model.estimator, model.state(), {"practice_ids": []})
    with db.system() as session:
        stored = model_store.save_candidate(
            session, franchise_id, kind="next_action", blob=built.blob, manifest=built.manifest(),
            sha256=built.sha256, metrics={}, data_from=None, data_to=None, code_version="test",
        )  # fmt: skip
        model_store.decide(session, franchise_id, stored.id, promote=True, decision={"test": "page"})


def test_the_patient_card_shows_the_models_suggestions_for_that_patient(app_env):
    db = app_env
    rows = db.world.practices["a1"]
    _promote_next_action_model(db, db.world.franchises["fa"])
    context = AccessContext.for_practices([rows.practice_id])
    with db.as_app(context) as session:
        expected = serving.suggest_next_actions(session, context, patient_id=rows.patient_id, log=False)
    # The patient's latest episode is today's booking, so the model has something to say (checking in first).
    assert expected and expected[0].activity == "check_in", expected
    at = sign_in(RECEPTIONIST)
    at.session_state["focus"] = SearchHit(kind="patient", practice_id=rows.practice_id, id=rows.patient_id,
                                          title="patient", detail="", score=1.0, patient_id=rows.patient_id)  # fmt: skip
    at.run()
    assert not at.exception
    shown = [b.label for b in at.button if (b.key or "").startswith("hub.patient_suggestion.")]
    assert shown == [f"{s.label} · {fmt.percent(s.score, 0)}" for s in expected]
    assert all(" · 0 %" not in label for label in shown)


def test_every_suggested_action_has_a_workspace_to_open():
    actions = {action for action, _ in serving.ACTIONS.values()}
    assert actions <= set(ACTION_OPENS)
    assert set(ACTION_OPENS.values()) <= set(OPENS)
