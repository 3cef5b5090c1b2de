"""Models on the warehouse: care-episode logs under RLS, training per franchise, stored artefacts, promotion,
serving (suggestions with outcome logging, no-show risk)."""

from __future__ import annotations

import polars as pl
from sqlalchemy import text

from warehouse.eventlog import appointment_frame, care_episode_log
from warehouse.tenancy import AccessContext


def _franchise(world) -> tuple[int, list[int]]:  # noqa: ANN001
    with world.db.system() as session:
        franchise = session.scalar(text("SELECT id FROM tenant WHERE code = 'fr-sync'"))
    return franchise, [p.practice_id for p in world.practices]


def test_sizes(model_world):
    franchise, practices = _franchise(model_world)
    with model_world.db.as_app(AccessContext.for_practices(practices)) as session:
        log = care_episode_log(session, practices)
        appts = appointment_frame(session, practices)
    print(log.height, log["case_id"].n_unique(), appts.height, appts["status"].value_counts())
    print(log["activity"].value_counts())
    assert False
