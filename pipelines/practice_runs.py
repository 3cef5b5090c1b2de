"""Run requests for every practice partition, shared by the schedules of the practice-partitioned domains."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import RunRequest, ScheduleEvaluationContext

from pipelines.animana.partitions import animana_practices


def per_practice_requests(
    context: ScheduleEvaluationContext, *, domain: str, op: str, full: bool
) -> Iterator[RunRequest]:
    """One run per onboarded practice; the run key includes the tick, so a tick never launches a practice twice."""
    mode = "full" if full else "incremental"
    for code in animana_practices.get_partition_keys(dynamic_partitions_store=context.instance):
        yield RunRequest(
            partition_key=code,
            run_key=f"{domain}:{mode}:{code}:{context.scheduled_execution_time.isoformat()}",
            run_config={"ops": {op: {"config": {"full": full}}}},
            tags={f"{domain}/mode": mode},
        )
