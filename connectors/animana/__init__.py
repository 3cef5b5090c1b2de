"""IDEXX Animana connector: typed client (`AnimanaClient`) and a simulator of the API (`.simulator`)."""

from .client import AnimanaClient, Page, RetryPolicy
from .errors import (
    AnimanaError,
    ApiUnavailable,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    RateLimited,
    SettingsError,
    ValidationFailed,
)
from .models import RESOURCE_MODELS, RESOURCES, AnimanaRecord, RejectedRecord, Tombstone
from .settings import AnimanaSettings, load_settings

__all__ = [
    "RESOURCES",
    "RESOURCE_MODELS",
    "AnimanaClient",
    "AnimanaError",
    "AnimanaRecord",
    "AnimanaSettings",
    "ApiUnavailable",
    "AuthError",
    "Conflict",
    "InvalidResponse",
    "NotFound",
    "Page",
    "RateLimited",
    "RejectedRecord",
    "RetryPolicy",
    "SettingsError",
    "Tombstone",
    "ValidationFailed",
    "load_settings",
]
