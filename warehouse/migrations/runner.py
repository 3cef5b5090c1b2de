"""Schema migrations (Alembic) driven from code: upgrade, downgrade, and a check that the database is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

MIGRATIONS_DIR = Path(__file__).parent


class MigrationsBehind(RuntimeError):
    """The database schema is older than the code; the message says how to upgrade."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def set_app_role_password(url: str, password: str) -> None:
    """Give ``vetconnect_app`` a password, for servers that do not trust local connections (DATABASE_URL)."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE vetconnect_app PASSWORD {}").format(sql.Literal(password)))


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def require_current(url: str) -> None:
    """Fail fast (one line, with the fix) when the code expects a newer schema than the database has."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise MigrationsBehind(
            f"database schema is at {current or 'empty'} but the code needs {head}: run `vetconnect db migrate`"
        )
