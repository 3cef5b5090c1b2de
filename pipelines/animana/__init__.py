"""Animana domain: sync service (`sync.py`) and its Dagster definitions (`defs`, in `definitions.py`).

`defs` is loaded on first access: `vetconnect sync animana` runs the sync service in-process and must not pay
for importing Dagster (about 0.7 s of CPU per start, more when sources are compiled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import Definitions

    defs: Definitions


def __getattr__(name: str) -> Any:
    if name == "defs":
        from pipelines.animana.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
