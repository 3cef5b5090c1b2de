"""Connection settings for the Animana API, read from `VETCONNECT_ANIMANA_*` environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import SettingsError

ENV_PREFIX = "VETCONNECT_ANIMANA_"


class AnimanaSettings(BaseSettings):
    """`url`, `client_id` and `client_secret` are required: no silent defaults for credentials."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True)

    url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    page_size: int = Field(default=500, ge=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("client_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value


def load_settings(**overrides: Any) -> AnimanaSettings:
    """Read settings from the environment (keywords override), turning pydantic's error into one that
    names the environment variables to set. Input values are never echoed (they may be secrets)."""
    try:
        return AnimanaSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = ENV_PREFIX + field.upper()
            if error["type"] == "missing":
                problems.append(f"{variable} is not set")
            else:
                problems.append(f"{variable} is invalid: {error['msg']}")
        raise SettingsError("Animana settings: " + "; ".join(problems)) from None
