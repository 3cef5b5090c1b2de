"""Animana domain: the per-practice sync assets with their checks, schedules, sensor and resources (`defs`).

The sync itself is `connectors.animana.sync`, which the CLI runs without Dagster.
"""

from __future__ import annotations

from pipelines.animana.definitions import defs

__all__ = ["defs"]
