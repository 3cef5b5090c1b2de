"""Resolves where the database is (embedded server or DATABASE_URL) and hands out engines.

Expected failures become :class:`SetupError` with a one-line message that includes the fix; the CLI prints
them without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from connectors.animana.cutover import cutover_from_env
from connectors.animana.health import AnimanaProbe, probe_from_env
from connectors.animana.writeback.write_through import write_through_from_env
from vetconnect import pgserver
from vetconnect.settings import Settings, get_settings
from warehouse.health.report import HealthSources
from warehouse.integration.cutover import CutoverPort
from warehouse.integration.gateway import UpstreamSender
from warehouse.kernel.db import app_url, make_engine, normalise_url


class SetupError(RuntimeError):
    """The environment is not ready (server unreachable, schema behind…); the message says what to do."""


@dataclass
class Runtime:
    settings: Settings

    @property
    def external(self) -> bool:
        return self.settings.database_url is not None

    @cached_property
    def admin_url(self) -> str:
        if self.settings.database_url:
            return normalise_url(self.settings.database_url)
        try:
            info = pgserver.start(self.settings.pgdata, wal_archive=self.settings.wal_archive)
        except pgserver.ServerError as exc:
            raise SetupError(str(exc)) from exc
        return info.url()

    @property
    def reachable_admin_url(self) -> str:
        """The admin URL, after checking the server answers (so callers fail with a clear line, not a trace)."""
        _ = self.admin_engine
        return self.admin_url

    @cached_property
    def admin_engine(self) -> Engine:
        engine = make_engine(self.admin_url)
        self._check_reachable(engine)
        return engine

    @cached_property
    def app_engine(self) -> Engine:
        password = self.settings.app_db_password
        return make_engine(
            app_url(self.admin_url, password.get_secret_value() if password else None), pool_size=10
        )

    def _check_reachable(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            where = make_url(self.admin_url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            source = "DATABASE_URL" if self.external else "the embedded server"
            raise SetupError(f"cannot reach PostgreSQL at {where} ({source}): {reason}") from exc

    def master_key(self) -> bytes:
        return self.settings.require_master_key()

    @cached_property
    def upstream_sender(self) -> UpstreamSender:
        """`animana` mode's write-through for this process (one thread-safe Animana client); the dashboard, which may
        not import the connector, gets it here."""
        return write_through_from_env()

    @cached_property
    def cutover_port(self) -> CutoverPort:
        """The Animana side of a module's cut-over (drain, final sync, the API's records) for this process; the
        dashboard gets it here like `upstream_sender`. Raises `UpstreamUnavailable` without Animana settings."""
        return cutover_from_env(self.app_engine, self.master_key())

    @cached_property
    def animana_probe(self) -> AnimanaProbe | None:
        """The health check's Animana probe for this process (None without Animana settings)."""
        return probe_from_env()

    def health_sources(self) -> HealthSources:
        """What a health run reads. A database that cannot be reached is a failed check, not an error; a stopped
        embedded server is reported, never started by a health check."""
        engine, error = None, ""
        if not self.external and pgserver.status(self.settings.pgdata) is None:
            error = f"the embedded PostgreSQL is not running (data dir {self.settings.pgdata}): `vetconnect db start`"
        else:
            try:
                engine = self.admin_engine
            except SetupError as exc:
                error = str(exc)
        return HealthSources(
            admin_engine=engine,
            backups_dir=self.settings.home.resolve() / "backups",
            animana_probe=self.animana_probe,
            mllp_addresses=self.settings.mllp_addresses,
            database_error=error,
        )


def get_runtime() -> Runtime:
    return Runtime(get_settings())


def migrated_runtime() -> Runtime:
    """The runtime, after checking the schema is at head (else ``MigrationsBehind`` names the fix)."""
    from warehouse.migrations import runner as migrate

    runtime = get_runtime()
    migrate.require_current(runtime.reachable_admin_url)
    return runtime
