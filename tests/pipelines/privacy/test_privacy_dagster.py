"""The retention purge in Dagster with a real warehouse resource: the daily job purges an erasure whose retention
has ended and leaves one that has not; the schedule runs that job and is in the one `Definitions`."""

from __future__ import annotations

import base64

from dagster import Definitions
from sqlalchemy import text

from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.privacy.jobs import retention_purge_daily, retention_purge_job
from tests.conftest import MASTER_KEY
from warehouse.kernel.tenancy import AccessContext
from warehouse.privacy.erasure import erase_client
from warehouse.security.permissions import Actor


def test_the_daily_job_purges_only_what_is_past_its_retention(ws_db):
    a1, a2 = ws_db.world.practices["a1"], ws_db.world.practices["a2"]
    for rows in (a1, a2):
        with ws_db.as_app(AccessContext.for_practices([rows.practice_id])) as session:
            erase_client(session, Actor.at(None, rows.practice_id, {"practice_manager"}), rows.practice_id,
                         rows.client_id, master_key=MASTER_KEY)  # fmt: skip
    with ws_db.system("test: a1's retention ended yesterday") as session:
        session.execute(
            text(
                "UPDATE client_erasure SET retention_until = current_date - 1 WHERE practice_id = :p AND client_id = :c"
            ),
            {"p": a1.practice_id, "c": a1.client_id},
        )
    warehouse = WarehouseResource(
        database_url=ws_db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
    )

    result = retention_purge_job.execute_in_process(resources={"warehouse": warehouse})

    assert result.success
    report = result.output_for_node("retention_purge")
    assert [(e.practice_id, e.client_id) for e in report.erasures] == [(a1.practice_id, a1.client_id)]
    with ws_db.system("test: what is left") as session:
        left = dict(session.execute(text("SELECT practice_id, count(*) FROM visit GROUP BY 1")).all())
    assert left.get(a1.practice_id, 0) == 0 and left[a2.practice_id] == 1


def test_the_schedule_is_daily_and_loaded():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert "retention_purge_job" in {j.name for j in repository.get_all_jobs()}
    assert retention_purge_daily.cron_schedule == "30 3 * * *"
    assert retention_purge_daily.job_name == "retention_purge_job"
