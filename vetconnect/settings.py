"""Runtime settings, read from the environment (prefix ``VETCONNECT_``) and ``.env``.

Secrets never get a silent default: outside demo mode a missing master key is a start-up error that names
the variable (see :func:`Settings.require_master_key`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingSetting(RuntimeError):
    """A required setting is absent; the message names the environment variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VETCONNECT_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".vetconnect"), description="Data directory (embedded PostgreSQL, files)")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "VETCONNECT_DATABASE_URL"),
        description="External PostgreSQL (admin/superuser URL). Unset: the embedded server is used.",
    )
    app_db_password: SecretStr | None = Field(
        default=None, description="Password of the vetconnect_app role on an external server."
    )
    master_key: SecretStr | None = Field(default=None, description="Base64 32-byte key wrapping tenant keys")
    demo: bool = Field(default=False, description="Demo mode: a fixed, publicly known master key is allowed")
    health_mllp: str = Field(
        default="", description="MLLP listeners the health check connects to: host:port, comma-separated"
    )

    smtp_host: str = Field(default="127.0.0.1", description="Mail server messages to owners are sent through")
    smtp_port: int = Field(default=8025, description="Its port (8025: `vetconnect messages smtp-server`)")
    mail_from: str = Field(default="noreply@vetconnect.local", description="The sender of messages to owners")
    sms_gateway_url: str = Field(
        default="http://127.0.0.1:8766",
        description="The SMS gateway (default: `vetconnect messages sms-simulator`)",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /metrics and /health's detail; unset: /metrics is closed",
    )
    backup_erasure_grace_days: int = Field(
        default=7,
        ge=0,
        description="Days a backup generation from before a client erasure stays readable (README, 'Backups')",
    )

    @property
    def pgdata(self) -> Path:
        return self.home.resolve() / "pgdata"

    @property
    def mllp_addresses(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.health_mllp.split(",") if a.strip())

    @property
    def backups(self) -> Path:
        """Base backups (one directory each) and, under ``wal/``, the continuous WAL archive."""
        return self.home.resolve() / "backups"

    @property
    def mailbox(self) -> Path:
        """Where the local SMTP server keeps every mail it receives (one .eml per message)."""
        return self.home.resolve() / "mail"

    @property
    def wal_archive(self) -> Path:
        return self.backups / "wal"

    def require_master_key(self) -> bytes:
        """The 32-byte key-encryption key. Demo mode derives a fixed one; anywhere else it must be set."""
        if self.master_key is not None:
            try:
                key = base64.b64decode(self.master_key.get_secret_value(), validate=True)
            except ValueError as exc:
                raise MissingSetting("VETCONNECT_MASTER_KEY is not valid base64") from exc
            if len(key) != 32:
                raise MissingSetting("VETCONNECT_MASTER_KEY must decode to exactly 32 bytes")
            return key
        if self.demo:
            # Publicly known on purpose: demo data is fake, and a demo must start with no set-up.
            return hashlib.sha256(b"vetconnect-demo-master-key").digest()
        raise MissingSetting(
            "VETCONNECT_MASTER_KEY is not set. Generate one with "
            "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'` "
            "or run with VETCONNECT_DEMO=1 for demo data only."
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
