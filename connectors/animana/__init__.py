"""IDEXX Animana connector: typed client (`AnimanaClient`), one spec per resource (`.resources`), the sync service
(`.sync`) and a simulator of the API (`.simulator`)."""

from .client import AnimanaClient
from .errors import (
    AnimanaError,
    ApiUnavailable,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    PreconditionFailed,
    RateLimited,
    SettingsError,
    ValidationFailed,
)
from .models import AnimanaRecord, RejectedRecord, Tombstone
from .resources.registry import RESOURCE_MODELS, RESOURCE_ORDER
from .settings import AnimanaSettings, load_settings
from .streaming import Page
from .transport import RetryPolicy
from .writes import WriteAnswer

__all__ = [
    "RESOURCE_MODELS",
    "RESOURCE_ORDER",
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
    "PreconditionFailed",
    "RateLimited",
    "RejectedRecord",
    "RetryPolicy",
    "SettingsError",
    "Tombstone",
    "ValidationFailed",
    "WriteAnswer",
    "load_settings",
]
