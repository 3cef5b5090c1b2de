"""Cut-over of a module (architecture §5, phase 3): Animana stops being read for it at a practice and VetConnect
holds it alone, after proving that nothing is lost.

The steps, each reported to a `CutoverProgress` (the CLI's progress bars, the page's ``st.status``):

1. *check*: refused while the module has dead letters or open conflicts at the practice (named, so a person can
   fix them first), or is native already, or the practice is not linked to Animana.
2. *drain*: the module's write-back entries are pushed until none is pending (`CutoverPort.drain`, the
   dispatcher's own push); one that Animana refuses meanwhile stops the cut-over as a dead letter would.
3. *sync*: a final incremental sync of the module's resources (Animana's last changes come in).
4. *reconcile*: per resource, the API's records against the mirrored rows (`reconcile`): counts and a checksum
   per record. A difference stops the cut-over unless the caller confirms the differences with a reason.
5. *switch*: in one transaction, checked again that no change of the module arrived meanwhile, the module becomes
   ``native`` (`modes.set_mode`, audited with both modes) and an ``integration_cutover`` audit entry holds the
   reconciliation's summary, the differences (up to `AUDITED_DIFFERENCES`) and the reason they were accepted.

The rows keep their ``animana_id`` and ``animana_version``: the Animana ids remain as history.

A dry run (``dry_run=True``) checks, syncs and reconciles but neither drains nor switches: draining would send
staff's changes to Animana ahead of the dispatcher (an effect outside VetConnect a rehearsal should not have), the
sync only brings in what the scheduled sync would. Its blockers (dead letters, conflicts, changes still waiting
for Animana, which show up as differences) are reported instead of refused; it is audited as a read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from warehouse.integration.errors import IntegrationError
from warehouse.integration.modes import mode_of, set_mode
from warehouse.integration.reconcile import (
    ApiItem,
    Difference,
    MirroredResource,
    ResourceCheck,
    ResourceReconciliation,
)
from warehouse.integration.tables import MIRRORED, MODULE_LABELS
from warehouse.kernel.audit import record
from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.schema.tenancy import MODULES
from warehouse.security.permissions import INTEGRATION_MANAGE, Actor, require

STEPS = {
    "check": "Checking dead letters and conflicts",
    "drain": "Sending the changes still waiting for Animana",
    "sync": "Final sync from Animana",
    "reconcile": "Reconciling with Animana",
    "switch": "Switching to native",
}
NAMED_BLOCKERS = 5  # dead letters and conflicts named in a refusal (all are counted)
AUDITED_DIFFERENCES = 500


@dataclass(frozen=True)
class CutoverPractice:
    """The practice being cut over and the Animana practice it mirrors."""

    practice_id: int
    franchise_id: int
    code: str
    animana_id: int


@dataclass(frozen=True)
class DrainReport:
    sent: int  # entries Animana acknowledged
    open: int  # entries of the module still pending or held afterwards (a deadline passed)


class CutoverProgress(Protocol):
    def started(self, step: str, label: str, total: int | None = None) -> None: ...
    def advance(self, step: str, done: int) -> None: ...
    def finished(self, step: str, summary: str) -> None: ...


class Silent:
    def started(self, step: str, label: str, total: int | None = None) -> None:
        pass

    def advance(self, step: str, done: int) -> None:
        pass

    def finished(self, step: str, summary: str) -> None:
        pass


class CutoverPort(Protocol):
    """What the cut-over needs of Animana (the warehouse may not import the connector):
    `connectors.animana.cutover` implements it, `vetconnect.runtime` provides it."""

    def resources(self, module: str) -> list[MirroredResource]:
        """The module's Animana resources, in load order, with the rows mirroring each."""
        ...

    def drain(
        self, practice: CutoverPractice, module: str, after_send: Callable[[], None] | None = None
    ) -> DrainReport:
        """Push the practice's write-back until no entry of ``module`` is pending (or a deadline passes)."""
        ...

    def final_sync(self, practice: CutoverPractice, module: str) -> dict[str, int]:
        """An incremental sync of the module's resources; the records read per resource."""
        ...

    def api_totals(self, practice: CutoverPractice) -> dict[str, int]:
        """Animana's live record count per resource."""
        ...

    def api_rows(self, practice: CutoverPractice, resource: str) -> Iterator[ApiItem]:
        """Every live record of ``resource`` as its read mapping makes it (or `Unmapped` with the reason)."""
        ...


@dataclass(frozen=True)
class Confirmation:
    """The caller accepts the differences the reconciliation finds, for this reason (kept in the audit)."""

    reason: str


@dataclass
class CutoverResult:
    practice_code: str
    module: str
    dry_run: bool
    outcome: str = "stopped"  # native | stopped (differences) | rehearsed (a dry run)
    sent: int = 0  # write-back entries drained
    synced: int = 0  # records the final sync read
    resources: list[ResourceReconciliation] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)  # a dry run's: what a real cut-over would refuse on
    reason: str | None = None  # why the differences were accepted

    @property
    def differences(self) -> list[Difference]:
        return [d for r in self.resources for d in r.listed]

    @property
    def difference_count(self) -> int:
        return sum(r.differences for r in self.resources)

    def summary(self) -> dict[str, dict[str, int]]:
        return {r.resource: r.summary() for r in self.resources}


def cut_over(
    app_engine: Engine,
    port: CutoverPort,
    actor: Actor,
    *,
    practice_id: int,
    module: str,
    master_key: bytes,
    dry_run: bool = False,
    confirmation: Confirmation | None = None,
    progress: CutoverProgress | None = None,
) -> CutoverResult:
    """Cut ``module`` of the practice over to native (see the module docstring). Raises `IntegrationError` when it
    refuses to start; returns the result (``outcome`` says whether the module is native now)."""
    progress = progress or Silent()
    if module not in MODULES:
        raise IntegrationError("module", f"Unknown module {module!r}; choose one of {', '.join(MODULES)}.")
    require(actor, INTEGRATION_MANAGE, practice_id)
    if confirmation is not None and not confirmation.reason.strip():
        raise IntegrationError("reason", "Say why the differences are accepted.")
    context = AccessContext.for_practices([practice_id], actor.user_id)
    label = MODULE_LABELS[module]

    progress.started("check", STEPS["check"])
    with tenant_session(app_engine, context) as session:
        practice = _linked(session, practice_id)
        if mode_of(session, practice_id, module) == "native":
            raise IntegrationError("module", f"{label} at {practice.code} is native already.")
        blockers = blocking(session, practice_id, module)
    result = CutoverResult(practice.code, module, dry_run)
    if blockers and not dry_run:
        raise IntegrationError(
            "module", f"{label} at {practice.code} cannot be cut over yet: " + "; ".join(blockers)
        )
    result.blockers = blockers
    progress.finished("check", "; ".join(blockers) if blockers else "no dead letters or open conflicts")

    if dry_run:
        with tenant_session(app_engine, context) as session:
            waiting = open_entries(session, practice_id, module)
        if waiting:
            result.blockers.append(
                f"{waiting} change(s) still waiting for Animana (a cut-over sends them first)"
            )
    else:
        progress.started("drain", STEPS["drain"], total=None)
        drained = port.drain(practice, module, after_send=lambda: progress.advance("drain", 1))
        result.sent = drained.sent
        with tenant_session(app_engine, context) as session:
            blockers = blocking(session, practice_id, module)
        if drained.open or blockers:
            waiting = [f"{drained.open} change(s) could not be sent to Animana yet"] if drained.open else []
            raise IntegrationError("module", f"{label} at {practice.code}: the cut-over stopped while sending: "
                                   + "; ".join(waiting + blockers))  # fmt: skip
        progress.finished("drain", f"{drained.sent} change(s) sent")

    progress.started("sync", STEPS["sync"])
    read = port.final_sync(practice, module)
    result.synced = sum(read.values())
    with tenant_session(app_engine, context) as session:
        blockers = blocking(session, practice_id, module)
    if blockers and not dry_run:
        raise IntegrationError(
            "module", f"{label} at {practice.code}: the final sync found " + "; ".join(blockers)
        )
    progress.finished("sync", f"{result.synced} record(s) read")

    resources = port.resources(module)
    totals = port.api_totals(practice)
    progress.started("reconcile", STEPS["reconcile"], total=sum(totals.get(r.name, 0) for r in resources))
    with tenant_session(app_engine, context) as session:
        check = ResourceCheck(session, practice_id, practice.franchise_id, master_key)
        for resource in resources:
            rows = port.api_rows(practice, resource.name)
            result.resources.append(check.run(resource, rows, lambda n: progress.advance("reconcile", n)))
        if dry_run:
            record(session, practice_id=practice_id, action="read", entity="integration_cutover",
                   detail=_audit_detail(result))  # fmt: skip
    found = result.difference_count
    progress.finished("reconcile", f"{found} difference(s)" if found else "equal to Animana")
    if dry_run:
        result.outcome = "rehearsed"
        return result
    if found and confirmation is None:
        return result

    progress.started("switch", STEPS["switch"])
    result.reason = confirmation.reason.strip() if found and confirmation else None
    with tenant_session(app_engine, context) as session:
        # Serialise with a concurrent switch of the module, then make sure nothing of it arrived meanwhile.
        session.execute(
            text("SELECT 1 FROM practice_module_mode WHERE practice_id = :p AND module = :m FOR UPDATE"),
            {"p": practice_id, "m": module},
        )
        late = open_entries(session, practice_id, module, including_dead=True)
        if late:
            raise IntegrationError("module", f"{label} at {practice.code}: {late} change(s) were made during the "
                                   "cut-over; run it again to send and reconcile them.")  # fmt: skip
        set_mode(session, actor, practice_id=practice_id, module=module, mode="native", confirmed=True)
        record(session, practice_id=practice_id, action="update", entity="integration_cutover",
               detail=_audit_detail(result))  # fmt: skip
    result.outcome = "native"
    progress.finished("switch", f"{label} is native: Animana is no longer read for it")
    return result


def _linked(session: Session, practice_id: int) -> CutoverPractice:
    row = session.execute(
        text(
            "SELECT id, franchise_id, code, animana_practice_id FROM tenant WHERE id = :p AND kind = 'practice'"
        ),
        {"p": practice_id},
    ).one_or_none()
    if row is None:
        raise IntegrationError("practice", f"No practice {practice_id}.")
    if row.animana_practice_id is None:
        raise IntegrationError(
            "practice", f"{row.code} is not linked to Animana: switch its modes to native directly."
        )
    return CutoverPractice(row.id, row.franchise_id, row.code, int(row.animana_practice_id))


def blocking(session: Session, practice_id: int, module: str) -> list[str]:
    """The module's dead letters and open conflicts at the practice, in words (the first few named)."""
    found = []
    dead = session.execute(
        text(
            "SELECT table_name, row_id, last_error FROM writeback_outbox WHERE practice_id = :p AND module = :m "
            "AND state = 'dead' ORDER BY id"
        ),
        {"p": practice_id, "m": module},
    ).all()
    if dead:
        named = ", ".join(
            f"{MIRRORED[d.table_name].label} {d.row_id} ({d.last_error})" for d in dead[:NAMED_BLOCKERS]
        )
        found.append(f"{len(dead)} dead letter(s): {named}" + (" …" if len(dead) > NAMED_BLOCKERS else ""))
    conflicts = session.execute(
        text(
            "SELECT table_name, row_id, fields FROM writeback_conflict WHERE practice_id = :p AND module = :m "
            "AND state = 'open' ORDER BY id"
        ),
        {"p": practice_id, "m": module},
    ).all()
    if conflicts:
        named = ", ".join(
            f"{MIRRORED[c.table_name].label} {c.row_id} ({', '.join(sorted(c.fields))})"
            for c in conflicts[:NAMED_BLOCKERS]
        )
        found.append(
            f"{len(conflicts)} open conflict(s): {named}" + (" …" if len(conflicts) > NAMED_BLOCKERS else "")
        )
    return found


def open_entries(session: Session, practice_id: int, module: str, *, including_dead: bool = False) -> int:
    """Write-back entries of the module at the practice not yet acknowledged by Animana."""
    states = ["pending", "held", "dead"] if including_dead else ["pending", "held"]
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM writeback_outbox WHERE practice_id = :p AND module = :m "
                "AND state = ANY(:states)"
            ),
            {"p": practice_id, "m": module, "states": states},
        ).scalar_one()
    )


def _audit_detail(result: CutoverResult) -> dict:
    return {
        "module": result.module,
        "dry_run": result.dry_run,
        "sent": result.sent,
        "synced": result.synced,
        "reconciliation": result.summary(),
        "differences": [
            {"resource": d.resource, "animana_id": d.animana_id, "kind": d.kind, "fields": list(d.fields)}
            for d in result.differences[:AUDITED_DIFFERENCES]
        ],
        "accepted_because": result.reason,
    }


def reconciliation_frame(result: CutoverResult) -> pl.DataFrame:
    """Per resource: Animana's records, the mirrored rows, equal ones and each kind of difference."""
    columns = ("resource", "api", "mirrored", "equal", "missing", "extra", "different")
    rows = [{"resource": r.resource, **r.summary()} for r in result.resources]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.Int64) | {"resource": pl.String})


def differences_frame(result: CutoverResult) -> pl.DataFrame:
    """The listed differences, one per record: which resource, its Animana id, the kind and the fields."""
    rows = [
        {"resource": d.resource, "animana_id": d.animana_id, "kind": d.kind, "fields": ", ".join(d.fields),
         "note": d.note}
        for d in result.differences
    ]  # fmt: skip
    return pl.DataFrame(
        rows, schema=dict.fromkeys(("resource", "animana_id", "kind", "fields", "note"), pl.String)
    )
