"""`vetconnect animana ...`: run the simulator, ask the API for record counts.

Mounted by the main CLI as a sub-app (`app.add_typer(animana_app, name="animana")`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .client import AnimanaClient
from .errors import AnimanaError
from .resources.registry import RESOURCE_ORDER
from .settings import load_settings
from .simulator.app import SimulatorConfig
from .simulator.server import serve

animana_app = typer.Typer(help="IDEXX Animana: simulator and API tools.", no_args_is_help=True)


class ScaleName(StrEnum):
    small = "small"
    demo = "demo"
    medium = "medium"
    large = "large"


@animana_app.command()
def simulate(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 42,
    practices: Annotated[int, typer.Option(min=1, help="Number of practices.")] = 3,
    scale: Annotated[
        ScaleName,
        typer.Option(
            help="small (tests), demo (a few thousand rows/practice), medium (~100k rows/practice), large."
        ),
    ] = ScaleName.small,
    faults: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests that fail, stall or truncate.")
    ] = 0.0,
    rate_limit: Annotated[
        int, typer.Option(min=0, help="Requests per minute per client (0 = unlimited).")
    ] = 0,
    history_years: Annotated[float, typer.Option(min=0.1, help="Years of history to generate.")] = 3.0,
    token_ttl: Annotated[float, typer.Option(min=0.1, help="Access token lifetime in seconds.")] = 3600.0,
    client_id: Annotated[str, typer.Option(help="Client id the simulator accepts.")] = "vetconnect-sim",
    client_secret: Annotated[
        str | None, typer.Option(help="Client secret (default: a random one, printed).")
    ] = None,
    cache_practices: Annotated[int, typer.Option(min=1, help="Generated practices kept in memory.")] = 4,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (smoke tests).")
    ] = None,
) -> None:
    """Serve the Animana simulator and print the settings a client needs."""
    config = SimulatorConfig(
        seed=seed,
        practices=practices,
        scale=scale.value,
        faults=faults,
        rate_limit=rate_limit,
        rate_window=60.0,
        history_years=history_years,
        token_ttl=token_ttl,
        client_id=client_id,
        cache_practices=cache_practices,
        **({"client_secret": client_secret} if client_secret else {}),
    )
    base_url = f"http://{host}:{port}"
    # These are the simulator's own demo credentials: printing them is the point of this command.
    typer.echo(f"Animana simulator on {base_url}  (seed={seed}, practices={practices}, scale={scale.value})")
    typer.echo(f"export VETCONNECT_ANIMANA_URL={base_url}")
    typer.echo(f"export VETCONNECT_ANIMANA_CLIENT_ID={config.client_id}")
    typer.echo(f"export VETCONNECT_ANIMANA_CLIENT_SECRET={config.client_secret}")
    serve(config, host=host, port=port, duration=duration)


@animana_app.command()
def counts(
    practice: Annotated[int | None, typer.Option(help="Practice id.")] = None,
    all_practices: Annotated[bool, typer.Option("--all", help="Every practice the client can see.")] = False,
) -> None:
    """Ask the API for live record totals per resource and print them as a table."""
    if (practice is None) == (not all_practices):
        raise typer.BadParameter("give either --practice ID or --all")
    try:
        settings = load_settings()
        with AnimanaClient(settings) as client:
            ids = [p.id for p in client.practices()] if all_practices else [practice]
            rows = {pid: client.counts(pid) for pid in ids}
    except AnimanaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    resources = [r for r in RESOURCE_ORDER if any(r in c for c in rows.values())]
    width = max(len(r) for r in resources + ["resource"])
    typer.echo("resource".ljust(width) + "".join(f"{pid:>10}" for pid in ids))
    for resource in resources:
        typer.echo(resource.ljust(width) + "".join(f"{rows[pid].get(resource, 0):>10}" for pid in ids))
    typer.echo("total".ljust(width) + "".join(f"{sum(rows[pid].values()):>10}" for pid in ids))
