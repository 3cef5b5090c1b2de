"""Dagster resources: the warehouse (engines + master key) and the Animana API client.

Both open what they hold in `setup_for_execution` and close it in `teardown_after_execution`; secrets come from
the environment through `EnvVar` in `pipelines/animana/definitions.py`. Which Animana (live API or simulator) is
chosen by configuration (the URL), never by code paths.
"""

import base64
import binascii

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr
from sqlalchemy import Engine

from connectors.animana import AnimanaClient, RetryPolicy, load_settings
from warehouse.kernel.db import app_url, make_engine


class WarehouseResource(ConfigurableResource):
    """PostgreSQL: an admin engine (onboarding look-ups via the audited system session) and an app engine (RLS)."""

    database_url: str
    master_key: str  # base64 of 32 bytes
    app_password: str | None = None

    _admin: Engine | None = PrivateAttr(default=None)
    _app: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._admin = make_engine(self.database_url)
        self._app = make_engine(app_url(self.database_url, self.app_password), pool_size=4)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for engine in (self._admin, self._app):
            if engine is not None:
                engine.dispose()

    @property
    def admin_engine(self) -> Engine:
        if self._admin is None:
            raise RuntimeError("WarehouseResource used outside an execution")
        return self._admin

    @property
    def app_engine(self) -> Engine:
        if self._app is None:
            raise RuntimeError("WarehouseResource used outside an execution")
        return self._app

    def key(self) -> bytes:
        try:
            key = base64.b64decode(self.master_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the warehouse master key is not valid base64") from None
        if len(key) != 32:
            raise ValueError("the warehouse master key must be 32 bytes")
        return key


class AnimanaResource(ConfigurableResource):
    """An `AnimanaClient` for the run: opened at setup, closed at teardown."""

    url: str
    client_id: str
    client_secret: str
    page_size: int = 500
    retry_attempts: int = 8

    _client: AnimanaClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        settings = load_settings(
            url=self.url, client_id=self.client_id, client_secret=self.client_secret, page_size=self.page_size
        )
        self._client = AnimanaClient(settings, retry=RetryPolicy(attempts=self.retry_attempts))

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> AnimanaClient:
        if self._client is None:
            raise RuntimeError("AnimanaResource used outside an execution")
        return self._client
