"""The Animana sync service: one function the CLI, the demo and the Dagster assets all call.

Per practice, resources load parents first (`RESOURCE_ORDER`). Each page is mapped (connectors) and loaded
(warehouse) in ONE transaction under the practice's RLS context together with its `sync_state` cursor and the
run's counts; a crash at any point loses at most the page in flight, and the rerun resumes from the committed
cursor (upserts on animana_id make a replayed page harmless). Pages stream: only one page per resource is in
memory at a time.

Incremental: ``updated_since`` = the committed cursor (strictly after, so nothing repeats or is lost).
Full (``full=True``): every resource is re-read from the start and upserted (unchanged rows are not rewritten,
so the counts are the drift), products are reconciled against the live list.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from connectors.animana import AnimanaClient
from connectors.animana.mapping import map_items
from warehouse import loaders
from warehouse.loaders import LoadCounts, LoadTarget
from warehouse.tenancy import AccessContext, system_session, tenant_session

log = logging.getLogger(__name__)

RESOURCE_ORDER: tuple[str, ...] = (
    "staff",
    "resources",
    "products",
    "relations",
    "animals",
    "agenda",
    "consults",
    "vaccinations",
    "prescriptions",
    "labresults",
    "invoices",
    "payments",
)
# Small resources re-read completely on every run (products: the live list is reconciled).
ALWAYS_FULL = ("products",)

Progress = Callable[[str, str, int], None]  # (practice code, resource, records in the page just loaded)


@dataclass(frozen=True)
class LinkedPractice:
    """A warehouse practice and the Animana practice it mirrors."""

    practice_id: int
    franchise_id: int
    code: str
    animana_id: int


@dataclass
class PracticeResult:
    practice: LinkedPractice
    run_id: int
    full: bool
    counts: dict[str, LoadCounts] = field(default_factory=dict)
    records: int = 0

    def totals(self) -> LoadCounts:
        total = LoadCounts()
        for counts in self.counts.values():
            total.add(counts)
        return total


def linked_practices(admin_engine: Engine, codes: Sequence[str] | None = None) -> list[LinkedPractice]:
    """Practices linked to Animana (``tenant.animana_practice_id`` set), optionally only ``codes``. Listing
    across practices is a cross-tenant read, so it goes through the audited system session."""
    with system_session(admin_engine, reason="animana sync: list linked practices") as session:
        rows = session.execute(
            text(
                "SELECT id, franchise_id, code, animana_practice_id FROM tenant WHERE kind = 'practice' "
                "AND animana_practice_id IS NOT NULL AND offboarded_at IS NULL ORDER BY id"
            )
        ).all()
    found = [LinkedPractice(r.id, r.franchise_id, r.code, int(r.animana_practice_id)) for r in rows]
    if codes is not None:
        wanted = set(codes)
        found = [p for p in found if p.code in wanted]
        missing = wanted - {p.code for p in found}
        if missing:
            raise LookupError(f"not linked to Animana (or unknown): {', '.join(sorted(missing))}")
    return found


def link_practice(admin_engine: Engine, code: str, animana_practice_id: int) -> None:
    """Onboarding: link a warehouse practice to its Animana practice id."""
    with system_session(admin_engine, reason=f"animana: link practice {code}") as session:
        updated = session.execute(
            text("UPDATE tenant SET animana_practice_id = :aid WHERE code = :code AND kind = 'practice'"),
            {"aid": str(animana_practice_id), "code": code},
        ).rowcount
    if not updated:
        raise LookupError(f"no practice with code {code!r}")


def sync_practice(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    *,
    master_key: bytes,
    full: bool = False,
    resources: Iterable[str] = RESOURCE_ORDER,
    progress: Progress | None = None,
) -> PracticeResult:
    """Sync one practice (see the module docstring). Raises on API or database errors after recording the
    run as failed; whatever was committed before stays (and is where the next run resumes)."""
    context = AccessContext.for_practices([practice.practice_id])
    with tenant_session(app_engine, context) as session:
        run_id = loaders.start_run(session, practice.practice_id, full=full)
        cipher = loaders.practice_cipher(session, practice.practice_id, master_key)
    target = LoadTarget(practice.practice_id, practice.franchise_id, run_id)
    result = PracticeResult(practice, run_id, full)
    resources = [r for r in RESOURCE_ORDER if r in set(resources)]
    try:
        for resource in resources:
            result.counts[resource] = _sync_resource(
                app_engine, client, practice, target, resource, cipher=cipher, full=full, progress=progress,
                result=result,
            )  # fmt: skip
    except BaseException as exc:
        with tenant_session(app_engine, context) as session:
            loaders.finish_run(
                session, practice.practice_id, run_id, error=f"{type(exc).__name__}: {exc}"[:2000]
            )
        raise
    with tenant_session(app_engine, context) as session:
        loaders.mark_synced(session, practice.practice_id, resources, full=full)
        loaders.finish_run(session, practice.practice_id, run_id)
    return result


def _sync_resource(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    target: LoadTarget,
    resource: str,
    *,
    cipher: loaders.FieldCipher,
    full: bool,
    progress: Progress | None,
    result: PracticeResult,
) -> LoadCounts:
    context = AccessContext.for_practices([practice.practice_id])
    whole = full or resource in ALWAYS_FULL
    since: dt.datetime | None = None
    if not whole:
        with tenant_session(app_engine, context) as session:
            since = loaders.read_cursor(session, practice.practice_id, resource)
    counts = LoadCounts()
    live_codes: list[str] = []
    for page in client.iter_pages(practice.animana_id, resource, updated_since=since):
        batch = map_items(resource, page.items)
        if resource == "products":
            live_codes.extend(row[0] for row in batch.rows)
        with tenant_session(app_engine, context) as session:
            page_counts = loaders.load_batch(session, target, batch, cipher=cipher)
            counts.add(page_counts)
            loaders.commit_progress(
                session, target, resource, batch.high_water, full=whole, run_counts=counts.as_dict()
            )
        result.records += len(page.items)
        if progress is not None:
            progress(practice.code, resource, len(page.items))
    if resource == "products" and live_codes:
        with tenant_session(app_engine, context) as session:
            counts.deleted += loaders.reconcile_products(session, target, live_codes)
            loaders.commit_progress(session, target, resource, None, full=True, run_counts=counts.as_dict())
    return counts


def sync_all(
    app_engine: Engine,
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
    full: bool = False,
    progress: Progress | None = None,
    resources: Iterable[str] = RESOURCE_ORDER,
) -> list[PracticeResult]:
    """Sync practices one after the other (the simulator and the warehouse both favour practice locality)."""
    resources = tuple(resources)
    return [
        sync_practice(
            app_engine, client, p, master_key=master_key, full=full, progress=progress, resources=resources
        )
        for p in practices
    ]


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
    api = client.counts(practice.animana_id)
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        mirror = loaders.mirror_counts(session, practice.practice_id)
        quarantined = loaders.open_quarantine_counts(session, practice.practice_id)
    return Drift({r: api.get(r, 0) for r in RESOURCE_ORDER}, mirror, quarantined)


def integrity(app_engine: Engine, practice: LinkedPractice) -> dict[str, int]:
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        return loaders.integrity_problems(session, practice.practice_id)
