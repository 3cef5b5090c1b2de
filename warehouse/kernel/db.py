"""Engines for the three ways we talk to PostgreSQL: as admin (migrations), as the application role under RLS,
and as the audited system bypass (which is the admin connection switched to ``vetconnect_system``)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from warehouse.migrations.ddl import APP_ROLE


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg 3 driver for all of them."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def app_url(admin_url: str, password: str | None = None) -> str:
    """The same server and database, signed in as the non-superuser application role."""
    parsed = make_url(normalise_url(admin_url)).set(username=APP_ROLE, password=password)
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    return create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10},
    )
