"""Resources of the devices domain: the drop-folder root. The warehouse is the shared ``WarehouseResource``
(``pipelines.animana.resources``, key ``warehouse``): one database configuration for every domain."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from connectors.devices.drop import drop_root

__all__ = ["DropFoldersResource"]


class DropFoldersResource(ConfigurableResource):
    """``$VETCONNECT_HOME/drop/<practice code>/``: where analysers (or their middleware) write result files."""

    home: str
    # A file modified more recently than this may still be being written; it waits for the next tick.
    min_age_seconds: float = 2.0

    @property
    def root(self) -> Path:
        return drop_root(Path(self.home).expanduser().resolve())
