"""The one Dagster `Definitions` of VetConnect: every domain's definitions merged (`dagster dev` loads this,
see `[tool.dagster]` in pyproject). Add a domain by merging its `defs` here."""

from __future__ import annotations

from dagster import Definitions

from pipelines.animana import defs as animana_defs
from pipelines.devices import defs as devices_defs
from pipelines.marts import defs as marts_defs
from pipelines.messaging import defs as messaging_defs
from pipelines.models import defs as models_defs
from pipelines.privacy import defs as privacy_defs
from pipelines.writeback import defs as writeback_defs

defs = Definitions.merge(
    animana_defs, marts_defs, devices_defs, models_defs, writeback_defs, privacy_defs, messaging_defs
)
