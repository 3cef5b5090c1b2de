"""The VetConnect system-of-record schema. Importing this package registers every table on ``Base.metadata``."""

import warehouse.schema.models  # noqa: F401 - registers model_artifact, suggestion_log
from warehouse.schema import (
    billing,
    clients,
    clinical,
    erasure,
    ingestion,
    integration,
    marts,
    messaging,
    operations,
    referrals,
    scheduling,
    search,
    tenancy,
)
from warehouse.schema.base import Base, tenancy_of

__all__ = [
    "Base",
    "billing",
    "clients",
    "clinical",
    "erasure",
    "ingestion",
    "integration",
    "marts",
    "messaging",
    "operations",
    "referrals",
    "scheduling",
    "search",
    "tenancy",
    "tenancy_of",
]
