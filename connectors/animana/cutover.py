"""The Animana side of a module's cut-over (`warehouse.integration.cutover.CutoverPort`): drain the module's
write-back with the dispatcher's push, sync its resources one last time, and stream the API's records through each
resource spec's read mapping for the reconciliation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from sqlalchemy import Engine

from connectors.animana.client import AnimanaClient
from connectors.animana.errors import SettingsError
from connectors.animana.mapping import map_items
from connectors.animana.resources.registry import RESOURCE_ORDER, SPEC_BY_NAME
from connectors.animana.settings import load_settings
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import sync_practice
from connectors.animana.writeback.dispatcher import push
from warehouse.integration.cutover import CutoverPort, CutoverPractice, DrainReport, open_entries
from warehouse.integration.gateway import UpstreamUnavailable
from warehouse.integration.reconcile import ApiItem, MirroredResource, Unmapped
from warehouse.kernel.tenancy import AccessContext, tenant_session

DRAIN_DEADLINE_S = 120.0  # how long the drain waits out backoffs and Retry-After before it gives up
DRAIN_POLL_S = 0.5  # the pause between two pushes while entries wait for their next attempt


def module_resources(module: str) -> list[str]:
    return [r for r in RESOURCE_ORDER if SPEC_BY_NAME[r].module == module]


class AnimanaCutover:
    def __init__(
        self,
        app_engine: Engine,
        client: AnimanaClient,
        *,
        master_key: bytes,
        drain_deadline_s: float = DRAIN_DEADLINE_S,
    ) -> None:
        self._engine = app_engine
        self._client = client
        self._master_key = master_key
        self._drain_deadline_s = drain_deadline_s

    def resources(self, module: str) -> list[MirroredResource]:
        return [MirroredResource(r, SPEC_BY_NAME[r].load.mirror) for r in module_resources(module)]

    def drain(
        self, practice: CutoverPractice, module: str, after_send: Callable[[], None] | None = None
    ) -> DrainReport:
        """Push until no entry of the module is pending or held; entries waiting for their next attempt (a
        backoff, Animana's Retry-After) are waited for until the deadline. Other modules' due entries go along:
        the push keeps each record's order across modules."""
        linked = _linked(practice)
        deadline = time.monotonic() + self._drain_deadline_s
        sent = 0
        context = AccessContext.for_practices([practice.practice_id])
        while True:
            report = push(
                self._engine, self._client, linked, master_key=self._master_key, deadline=deadline,
                after_send=(lambda _entry: after_send()) if after_send else None,
            )  # fmt: skip
            sent += report.sent
            with tenant_session(self._engine, context) as session:
                remaining = open_entries(session, practice.practice_id, module)
            if not remaining or time.monotonic() >= deadline:
                return DrainReport(sent, remaining)
            time.sleep(DRAIN_POLL_S)

    def final_sync(self, practice: CutoverPractice, module: str) -> dict[str, int]:
        result = sync_practice(
            self._engine, self._client, _linked(practice), master_key=self._master_key,
            resources=module_resources(module),
        )  # fmt: skip
        return {r: c.inserted + c.updated + c.deleted for r, c in result.counts.items()}

    def api_totals(self, practice: CutoverPractice) -> dict[str, int]:
        return self._client.counts(practice.animana_id)

    def api_rows(self, practice: CutoverPractice, resource: str) -> Iterator[ApiItem]:
        """Every live record, page by page (the client's cursor pagination), mapped as the sync maps it."""
        for page in self._client.iter_pages(practice.animana_id, resource, wire=True):
            batch = map_items(resource, page.items)
            yield from batch.rows
            for rejection in batch.rejected:
                if not rejection.note:  # a note's record did load (with a correction)
                    yield Unmapped(rejection.external_id, rejection.reason)


def cutover_from_env(app_engine: Engine, master_key: bytes) -> CutoverPort:
    """The process's cut-over port, with the Animana API of the ``VETCONNECT_ANIMANA_*`` settings; without them
    `UpstreamUnavailable` names what is missing."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise UpstreamUnavailable(f"Animana is not configured: {exc}") from exc
    return AnimanaCutover(app_engine, AnimanaClient(settings), master_key=master_key)


def _linked(practice: CutoverPractice) -> LinkedPractice:
    return LinkedPractice(practice.practice_id, practice.franchise_id, practice.code, practice.animana_id)
