"""Alembic environment. The URL comes from the caller (``warehouse.migrations.runner``), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import warehouse.schema
from warehouse.schema import Base

config = context.config
target_metadata = Base.metadata
_ = warehouse.schema  # every table registered on the metadata for autogenerate


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
