"""Dependencies point one way (architecture §1): every module's imports, read from its source, against the table.

| folder | may import (of ours) |
|---|---|
| warehouse | warehouse |
| connectors | connectors, warehouse |
| models | models, warehouse |
| pipelines | pipelines, connectors, warehouse, models |
| dashboard | dashboard, warehouse, models |

vetconnect (the shell), bench and notebooks may import all. Imports inside functions count: a deferred import
is still a dependency. The one exception is listed below with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "warehouse",
    "connectors",
    "models",
    "pipelines",
    "dashboard",
    "vetconnect",
    "bench",
    "notebooks",
    "tests",
}
MAY_IMPORT = {
    "warehouse": {"warehouse"},
    "connectors": {"connectors", "warehouse"},
    "models": {"models", "warehouse"},
    "pipelines": {"pipelines", "connectors", "warehouse", "models"},
    "dashboard": {"dashboard", "warehouse", "models"},
}
# module -> the modules of ours it may import beyond its folder's row, and why.
EXCEPTIONS = {
    # The Streamlit process's door to the shell: the settings (pydantic-settings, read from the environment)
    # and the Runtime that starts the embedded PostgreSQL or connects to DATABASE_URL and hands out engines.
    # Moving them under warehouse would move the shell; every other page reaches them through this module.
    "dashboard/runtime.py": {"vetconnect.runtime", "vetconnect.settings"},
}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports absolutely (at any depth of the code), as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        # A relative import cannot leave its top-level package, so it never crosses a folder.
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def violations(folder: str) -> list[str]:
    allowed = MAY_IMPORT[folder]
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        name = str(path.relative_to(ROOT))
        for module in sorted(imports_of(path)):
            top = module.split(".")[0]
            if top in OURS and top not in allowed and module not in EXCEPTIONS.get(name, set()):
                found.append(f"{name} imports {module}")
    return found


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_a_folder_imports_only_what_its_row_of_the_table_allows(folder: str):
    assert violations(folder) == []


def test_the_exceptions_are_still_needed():
    """An exception that no longer happens is removed from the list, so that it cannot come back unnoticed."""
    for name, modules in EXCEPTIONS.items():
        assert modules <= imports_of(ROOT / name), name
