"""``vetconnect gdpr``: a client's rights under the GDPR from the shell — ``export`` writes everything the practice
holds about a client (the right of access) as ``client-<id>.json`` and ``client-<id>.pdf``.

The operator at the shell holds the database's keys, so the command acts for the practice it names (``user_id``
empty, like every other CLI write). The practice code is resolved through one audited system read; the export
runs under the practice's own RLS context, as the app does, and is audited there (action ``export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vetconnect.gdpr_erase_cli import CliError, gdpr_erase_app, practice_id_of
from vetconnect.runtime import migrated_runtime

gdpr_app = typer.Typer(help="GDPR: a client's personal data (export).", no_args_is_help=True)


@gdpr_app.command("export")
def export_cmd(
    practice: Annotated[str, typer.Option("--practice", "-p", help="Practice code")],
    client: Annotated[int, typer.Option("--client", "-c", help="The client's number at the practice")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the two files to")],
) -> None:
    """Write everything the practice holds about a client: client-<id>.json and client-<id>.pdf (audited)."""
    # Imported here: vetconnect.cli imports this module to mount it.
    from vetconnect.cli import expected_errors
    from warehouse.kernel.practice_time import practice_zone
    from warehouse.kernel.tenancy import AccessContext, tenant_session
    from warehouse.privacy.export import export_client, to_json
    from warehouse.privacy.export_pdf import to_pdf

    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with expected_errors(CliError, LookupError, OSError):
        runtime = migrated_runtime()
        practice_id = practice_id_of(runtime, practice)
        out_dir.mkdir(parents=True, exist_ok=True)
        with Progress(*columns, console=console) as progress:
            step = progress.add_task(f"Client {client} at {practice}: reading", total=3)
            with tenant_session(runtime.app_engine, AccessContext.for_practices([practice_id])) as session:
                export = export_client(session, practice_id, client, runtime.master_key())
                zone = practice_zone(session, practice_id)
            progress.update(step, advance=1, description=f"Client {client} at {practice}: writing JSON")
            json_path = out_dir / f"client-{client}.json"
            json_path.write_bytes(to_json(export))
            progress.update(step, advance=1, description=f"Client {client} at {practice}: writing PDF")
            pdf_path = out_dir / f"client-{client}.pdf"
            pdf_path.write_bytes(to_pdf(export, tz=zone))
            progress.update(step, advance=1, description=f"Client {client} at {practice}: done")
    animals = len(export.animals)
    visits = sum(len(a.visits) for a in export.animals)
    console.print(f"Wrote {json_path} and {pdf_path}: {export.contact.name}, {animals} animal(s), {visits} visit(s), "
                  f"{len(export.invoices)} invoice(s).", highlight=False)  # fmt: skip


# One `gdpr` group in the shell: erase and purge live beside the export in their own module.
gdpr_app.registered_commands.extend(gdpr_erase_app.registered_commands)
