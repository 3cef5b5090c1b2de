"""``vetconnect devices``: import result files, listen for MLLP, process drop folders, work the inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from vetconnect.runtime import Runtime, migrated_runtime
from vetconnect.settings import MissingSetting, get_settings

devices_app = typer.Typer(
    help="Lab analysers and imaging: HL7 v2 / ASTM / DICOM into the record.", no_args_is_help=True
)

PracticeOption = Annotated[
    str, typer.Option("--practice", "-p", help="Practice code (see `vetconnect tenants list`)")
]


class UnknownPractice(ValueError):
    pass


@contextmanager
def _errors() -> Iterator[None]:
    # Imported here: vetconnect.cli imports this module to mount it.
    from vetconnect.cli import expected_errors
    from warehouse.ingest.devices.inputs import InboxError

    with expected_errors(UnknownPractice, InboxError):
        yield


def _practice_id(runtime: Runtime, code: str) -> int:
    """Practice codes are looked up before any access context exists: one audited system read."""
    from warehouse.kernel.lookups import tenant_id_by_code
    from warehouse.kernel.tenancy import system_session

    with system_session(
        runtime.admin_engine, reason=f"devices: practice code {code!r} for a device feed"
    ) as s:
        practice_id = tenant_id_by_code(s, code, "practice")
        if practice_id is None:
            raise UnknownPractice(f"no practice with code {code!r}")
        return practice_id


def _master_key(runtime: Runtime) -> bytes | None:
    """Needed only to store DICOM files encrypted; without it they wait in the inbox (encryption_unavailable)."""
    try:
        return runtime.master_key()
    except MissingSetting:
        return None


def _describe(record) -> str:  # noqa: ANN001 - warehouse.ingest.devices.inputs.RecordResult
    if record.status == "duplicate":
        return f"duplicate of message {record.duplicate_of}: same content (not loaded again)"
    if record.status in ("ingested", "resolved"):
        described = f"{record.status} {record.observation_count} observations"
    else:
        described = f"inbox: {record.inbox_reason}: {record.inbox_detail}"
    if record.same_control_id_as is not None:
        described += (
            f" (a new message: its control id was used before by message {record.same_control_id_as},"
            " with other content)"
        )
    return described


@devices_app.command("import")
def import_files(
    files: Annotated[list[Path], typer.Argument(help="HL7 v2, ASTM or DICOM files")],
    practice: PracticeOption,
) -> None:
    """Store each file raw and load its results (or send it to the inbox); one line per file."""
    from vetconnect.cli import out
    from warehouse.kernel.tenancy import AccessContext, tenant_session

    with _errors():
        from connectors.devices.ingest import ingest_bytes

        runtime = migrated_runtime()
        practice_id = _practice_id(runtime, practice)
        master_key = _master_key(runtime)
        unreadable = 0
        for path in files:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                out.print(f"{path}: cannot read: {exc.strerror or exc}", highlight=False, soft_wrap=True)
                unreadable += 1
                continue
            with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
                record = ingest_bytes(session, practice_id, raw, "cli", path.name, master_key=master_key,
                                      dedup_by_content=True)  # fmt: skip
            out.print(f"{path}: {_describe(record)}", highlight=False, soft_wrap=True)
        if unreadable:
            raise typer.Exit(1)


@devices_app.command("listen")
def listen(
    practice: PracticeOption,
    port: Annotated[int, typer.Option(help="TCP port (0: any free port, printed)")] = 2575,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
) -> None:
    """Run an MLLP listener for one practice until Ctrl-C. An AA is sent only after the message is committed."""
    from vetconnect.cli import out

    with _errors():
        from connectors.devices.ingest import DeviceStore
        from connectors.devices.mllp import MLLPServer, freeze_startup_heap, hl7_handler

        runtime = migrated_runtime()
        practice_id = _practice_id(runtime, practice)
        # Partial frames and garbage have no sender to resend them: while the database is down they wait here.
        spool = get_settings().home.resolve() / "spool" / "mllp" / practice
        store = DeviceStore(runtime.app_engine, practice_id, _master_key(runtime), spool_dir=spool)
        if replayed := store.replay_spool():
            out.print(f"stored {replayed} spooled chunk(s) from {spool} in the inbox", highlight=False)

        async def serve() -> None:
            server = MLLPServer(hl7_handler(store.store), on_incomplete=store.on_incomplete,
                                on_garbage=store.on_garbage)  # fmt: skip
            bound_host, bound_port = await server.start(host, port)
            freeze_startup_heap()
            out.print(f"MLLP listening on {bound_host}:{bound_port} for practice {practice}; Ctrl-C to stop",
                      highlight=False)  # fmt: skip
            try:
                await server.serve_forever()
            finally:
                await server.close()

        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            out.print("stopped")


@devices_app.command("drop")
def drop(
    practice: Annotated[
        str | None, typer.Option("--practice", "-p", help="Only this practice's folder")
    ] = None,
    min_age: Annotated[float, typer.Option(help="Skip files modified less than this many seconds ago")] = 0.0,
) -> None:
    """Process the drop folders once ($VETCONNECT_HOME/drop/<practice code>/): store, then move each file."""
    from vetconnect.cli import out

    with _errors():
        from connectors.devices.drop import drop_root, pending_files, process_drop_file, scan_drop_folders

        runtime = migrated_runtime()
        root = drop_root(get_settings().home.resolve())
        files = (
            pending_files(root / practice, practice, min_age=min_age)
            if practice
            else list(scan_drop_folders(root, min_age=min_age))
        )
        ids: dict[str, int] = {}
        master_key = _master_key(runtime)
        for dropped in files:
            if dropped.practice_code not in ids:
                ids[dropped.practice_code] = _practice_id(runtime, dropped.practice_code)
            result = process_drop_file(runtime.app_engine, ids[dropped.practice_code], dropped.path,
                                       practice_code=dropped.practice_code, master_key=master_key)  # fmt: skip
            out.print(f"{dropped.path}: {_describe(result.record)} → {result.moved_to.parent.name}/",
                      highlight=False, soft_wrap=True)  # fmt: skip
        if not files:
            out.print(f"nothing to do in {root}", highlight=False)


@devices_app.command("inbox")
def inbox_list(practice: PracticeOption) -> None:
    """Messages waiting for a person, with the reason."""
    from vetconnect.cli import out
    from warehouse.ingest.devices.inbox import inbox
    from warehouse.kernel.tenancy import AccessContext, tenant_session

    with _errors():
        runtime = migrated_runtime()
        practice_id = _practice_id(runtime, practice)
        with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
            items = inbox(session)
        for item in items:
            out.print(f"{item.message_id}\t{item.received_at:%Y-%m-%d %H:%M}\t{item.filename or item.source}\t"
                      f"{item.reason}: {item.detail}", highlight=False, soft_wrap=True)  # fmt: skip
        out.print(f"{len(items)} message(s) in the inbox")


@devices_app.command("resolve")
def resolve(message_id: int, patient_id: int, practice: PracticeOption) -> None:
    """Load an inbox message for the patient a person picked (from its stored raw copy)."""
    from vetconnect.cli import out
    from warehouse.ingest.devices.inbox import resolve_inbox
    from warehouse.kernel.tenancy import AccessContext, tenant_session

    with _errors():
        from connectors.devices.ingest import parse_raw

        runtime = migrated_runtime()
        practice_id = _practice_id(runtime, practice)
        with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
            record = resolve_inbox(session, message_id, patient_id, None, parser=parse_raw,
                                   master_key=_master_key(runtime))  # fmt: skip
        out.print(f"message {message_id}: {_describe(record)}")


@devices_app.command("retry")
def retry(practice: PracticeOption) -> None:
    """Re-process the inbox from the raw copies (an order or patient may exist by now)."""
    from vetconnect.cli import out
    from warehouse.ingest.devices.inbox import reprocess_inbox
    from warehouse.kernel.tenancy import AccessContext, tenant_session

    with _errors():
        from connectors.devices.ingest import parse_raw

        runtime = migrated_runtime()
        practice_id = _practice_id(runtime, practice)
        with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
            summary = reprocess_inbox(session, parser=parse_raw, master_key=_master_key(runtime))
        out.print(
            f"retried {summary.retried}: {summary.ingested} ingested, {summary.still_inbox} still in the inbox"
        )


@devices_app.command("send-orders")
def send_orders(
    practice: Annotated[
        str | None, typer.Option("--practice", "-p", help="Only this practice (default: every practice)")
    ] = None,
) -> None:
    """Send the queued lab orders to their labs over MLLP; one line per order with the lab's answer."""
    from vetconnect.cli import out

    with _errors():
        from connectors.devices.order_sender import send_queued_orders
        from pipelines.devices.jobs import practice_ids

        runtime = migrated_runtime()
        try:
            practices = practice_ids(runtime.admin_engine, [practice] if practice else None)
        except LookupError as exc:
            raise UnknownPractice(str(exc)) from exc
        total = 0
        for code, practice_id in practices.items():
            summary = send_queued_orders(runtime.app_engine, practice_id)
            for line in summary.lines:
                out.print(f"{code}: {line}", highlight=False, soft_wrap=True)
            total += summary.sent
        out.print(f"{total} order(s) sent")


@devices_app.command("lab-simulator")
def lab_simulator(
    port: Annotated[int, typer.Option(help="TCP port the simulated lab listens on")] = 2576,
    results_to: Annotated[
        str | None, typer.Option(help="HOST:PORT of our MLLP listener, where results are sent")
    ] = None,
    fault: Annotated[
        str | None, typer.Option(help="nack or no_answer: a lab that refuses or stays silent")
    ] = None,
) -> None:
    """A lab over MLLP for demos: acknowledges orders and sends their results back (see lab_simulator.py)."""
    import time

    from connectors.devices.lab_simulator import LabSimulator
    from vetconnect.cli import out

    target = None
    if results_to:
        host, _, target_port = results_to.rpartition(":")
        target = (host or "127.0.0.1", int(target_port))
    with LabSimulator(results_to=target, fault=fault, port=port) as simulator:
        out.print(f"lab simulator on 127.0.0.1:{simulator.port}; results to {results_to or 'nowhere'}; Ctrl-C to stop",
                  highlight=False)  # fmt: skip
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            out.print("stopped")
