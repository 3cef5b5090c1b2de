"""``vetconnect models``: evaluate next-action prediction on any event log; train the warehouse's models."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

models_app = typer.Typer(
    help="Next-action and no-show models: evaluate, train, promote.", no_args_is_help=True
)


@contextmanager
def _errors() -> Iterator[None]:
    from models.artifacts import ArtifactError
    from models.eventlog import EventLogError
    from vetconnect.cli import err, expected_errors

    with expected_errors():
        try:
            yield
        except (EventLogError, ArtifactError, LookupError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None


@models_app.command("evaluate-next-action")
def evaluate_next_action_cmd(
    events: Annotated[Path, typer.Option("--events", help="CSV event log (one row per event)")],
    case_col: Annotated[str, typer.Option("--case-col", help="Column with the case id")],
    activity_col: Annotated[
        str, typer.Option("--activity-col", help="Column with the activity (text or code)")
    ],
    time_col: Annotated[str, typer.Option("--time-col", help="Column with the timestamp")],
    attr_cols: Annotated[
        list[str] | None,
        typer.Option("--attr-cols", help="Attribute column (repeatable, or comma-separated)"),
    ] = None,
    per_prefix: Annotated[bool, typer.Option(help="Include top-1/top-3 per prefix length")] = False,
    save: Annotated[
        Path | None, typer.Option(help="Also save the trained model as an artefact directory")
    ] = None,
) -> None:
    """Chronological 2/3-1/3 split by case start; prints JSON: top1, top3, markov_top1, most_frequent_top1,
    n_test_prefixes, train_seconds (and more)."""
    from models import artifacts
    from models.eventlog import read_event_log
    from models.next_action import evaluate_next_action

    with _errors():
        attrs = [a.strip() for value in attr_cols or [] for a in value.split(",") if a.strip()]
        log = read_event_log(
            events, case_col=case_col, activity_col=activity_col, time_col=time_col, attr_cols=attrs
        )
        report, model = evaluate_next_action(log)
        if not per_prefix:
            report.pop("per_prefix_length")
        if save is not None:
            artifact = artifacts.build(
                "next_action",
                model.estimator,
                model.state(),
                {
                    "source": str(events),
                    **{
                        k: report[k]
                        for k in ("top1", "top3", "markov_top1", "most_frequent_top1", "data_window")
                    },
                },
            )
            artifacts.save_dir(artifact, save)
            report["artifact_sha256"] = artifact.sha256
        sys.stdout.write(json.dumps(report) + "\n")


@models_app.command("train")
def train_cmd(
    franchise: Annotated[
        str | None, typer.Option("--franchise", "-f", help="Franchise code (default: every franchise)")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", help="next_action, next_action_work_session and/or no_show (default: all three)"
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="Run the promotion check and promote a candidate that passes")
    ] = True,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, max=8, help="Models trained at once (one core each)")
    ] = 1,
) -> None:
    """Train on the warehouse (per franchise, under the franchise's RLS context); prints one JSON line per model."""
    from sqlalchemy import text

    from models.training import KINDS, decide, train
    from vetconnect.runtime import get_runtime
    from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
    from warehouse.migrations import runner as migrate

    with _errors():
        runtime = get_runtime()
        migrate.require_current(runtime.reachable_admin_url)
        with system_session(
            runtime.admin_engine, reason="models: list franchises and practices to train"
        ) as s:
            rows = s.execute(
                text(
                    "SELECT f.id, f.code, array_agg(p.id ORDER BY p.id) FROM tenant f JOIN tenant p "
                    "ON p.parent_id = f.id AND p.kind = 'practice' WHERE f.kind = 'franchise' "
                    "AND (CAST(:code AS text) IS NULL OR f.code = :code) GROUP BY f.id, f.code ORDER BY f.code"
                ),
                {"code": franchise},
            ).all()
        if franchise and not rows:
            raise LookupError(f"no franchise with code {franchise!r} (or it has no practices)")
        jobs = [(franchise_id, code, list(practice_ids), k) for franchise_id, code, practice_ids in rows
                for k in kind or list(KINDS)]  # fmt: skip

        def one(job: tuple[int, str, list[int], str]) -> dict[str, Any]:
            franchise_id, code, practice_ids, k = job
            try:
                with tenant_session(runtime.app_engine, AccessContext.for_practices(practice_ids)) as session:
                    result = train(session, franchise_id, k, practice_ids)
                    line: dict[str, Any] = {
                        "franchise": code,
                        "kind": k,
                        "artifact_id": result.artifact.id,
                        "version": result.artifact.version,
                        "metrics": result.artifact.metrics,
                    }
                    if promote:
                        line["decision"] = decide(session, franchise_id, result.artifact.id, result)
            except ValueError as exc:
                line = {"franchise": code, "kind": k, "skipped": str(exc)}
            return line

        # Each model trains with one OpenMP thread (models.runtime); `workers` of them run at once in threads
        # (scikit-learn's trees and polars release the GIL). Lines come out in the order of the jobs.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="train") as pool:
            for line in pool.map(one, jobs):
                sys.stdout.write(json.dumps(line, default=str) + "\n")
                sys.stdout.flush()
