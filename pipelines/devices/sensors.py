"""A sensor over the per-practice drop folders: a settled new file requests a run of its practice's folder.

The cursor is the set of files already requested (``<practice>/<name>:<mtime_ns>:<size>``), pruned on every
tick to the files still waiting, so it stays as small as the backlog. A file that is re-written (another mtime
or size) counts as new. A file whose run failed stays in its folder and is picked up by the next run of that
practice (a run processes every settled file of the folder, not only the ones that triggered it).
"""

from __future__ import annotations

import hashlib
import json

from dagster import RunConfig, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from connectors.devices.drop import DroppedFile, scan_drop_folders
from pipelines.devices.jobs import DropFolderConfig, device_drop_job
from pipelines.devices.resources import DropFoldersResource

__all__ = ["device_drop_sensor", "file_key"]


def file_key(dropped: DroppedFile) -> str:
    return f"{dropped.practice_code}/{dropped.path.name}:{dropped.mtime_ns}:{dropped.size}"


@sensor(job=device_drop_job, minimum_interval_seconds=15)
def device_drop_sensor(
    context: SensorEvaluationContext, drop_folders: DropFoldersResource
) -> SensorResult | SkipReason:
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    pending = list(scan_drop_folders(drop_folders.root, min_age=drop_folders.min_age_seconds))
    waiting = {file_key(f) for f in pending}
    new: dict[str, list[str]] = {}
    for dropped in pending:
        key = file_key(dropped)
        if key not in seen:
            new.setdefault(dropped.practice_code, []).append(key)
    cursor = json.dumps(sorted(waiting))
    if not new:
        if waiting != seen:
            return SensorResult(skip_reason="no new files", cursor=cursor)
        return SkipReason("no new files")
    requests = [
        RunRequest(
            run_key=f"drop:{code}:{hashlib.sha256('|'.join(keys).encode()).hexdigest()[:16]}",
            run_config=RunConfig(ops={"process_drop_folder": DropFolderConfig(practice_code=code)}),
            tags={"practice": code, "files": str(len(keys))},
        )
        for code, keys in sorted(new.items())
    ]
    return SensorResult(run_requests=requests, cursor=cursor)
