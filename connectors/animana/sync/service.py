"""The Animana sync service: what the CLI (`vetconnect sync animana`), the demo and the Dagster assets call.

`sync_all` runs up to ``workers`` practices at once (one connection each; practices do not share an audit chain, so
their transactions do not wait on each other), as threads or, with ``processes=True``, in worker processes
(`processes`); each practice is `practice.sync_practice`. `drift` and `integrity` are the checks after a sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from connectors.animana.client import AnimanaClient
from connectors.animana.resources.registry import RESOURCE_ORDER, SPEC_BY_NAME
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import PracticeResult, Progress, results_in_order, sync_practice
from connectors.animana.sync.processes import sync_in_processes
from warehouse.ingest.animana.checks import integrity_problems, mirror_counts, open_quarantine_counts
from warehouse.kernel.tenancy import AccessContext, tenant_session


def sync_all(
    app_engine: Engine,
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
    full: bool = False,
    progress: Progress | None = None,
    resources: Iterable[str] = RESOURCE_ORDER,
    workers: int = 1,
    processes: bool = False,
) -> list[PracticeResult]:
    """Sync practices, up to ``workers`` at once (one connection each, results in the order given). The first
    error is raised once the practices already started have finished; practices not yet started are skipped.

    ``processes``: the practices run in worker processes (`processes`; they parse and map in parallel instead of
    sharing one GIL) rather than threads of this process."""
    resources = tuple(resources)
    if processes and workers > 1 and len(practices) > 1:
        return sync_in_processes(
            app_engine,
            client,
            practices,
            master_key=master_key,
            full=full,
            resources=resources,
            progress=progress,
            workers=workers,
        )

    def one(practice: LinkedPractice) -> PracticeResult:
        return sync_practice(
            app_engine,
            client,
            practice,
            master_key=master_key,
            full=full,
            progress=progress,
            resources=resources,
        )

    if workers <= 1 or len(practices) <= 1:
        return [one(p) for p in practices]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="animana-sync") as pool:
        return results_in_order([pool.submit(one, p) for p in practices])


@dataclass(frozen=True)
class Drift:
    """API totals against the warehouse mirror for one practice (quarantined records counted as accounted)."""

    api: dict[str, int]
    warehouse: dict[str, int]
    quarantined: dict[str, int]

    @property
    def differences(self) -> dict[str, int]:
        out = {}
        for resource, total in self.api.items():
            have = self.warehouse.get(resource, 0) + self.quarantined.get(resource, 0)
            if have != total:
                out[resource] = have - total
        return out


def drift(app_engine: Engine, client: AnimanaClient, practice: LinkedPractice) -> Drift:
    """The API's totals against the warehouse's mirror, each resource counted by its spec's `MirrorCount`."""
    api = client.counts(practice.animana_id)
    mirrors = {r: SPEC_BY_NAME[r].load.mirror for r in RESOURCE_ORDER}
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        mirror = mirror_counts(session, practice.practice_id, mirrors)
        quarantined = open_quarantine_counts(session, practice.practice_id)
    return Drift({r: api.get(r, 0) for r in RESOURCE_ORDER}, mirror, quarantined)


def integrity(app_engine: Engine, practice: LinkedPractice) -> dict[str, int]:
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        return integrity_problems(session, practice.practice_id)
