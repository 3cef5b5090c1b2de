"""Every analyst notebook runs top to bottom against a synced world, as an analyst under RLS."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import text

from tests.conftest import drop_database, open_database
from tests.warehouse.marts.conftest import synced_mart_world
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.marts.refresh import refresh_all
from warehouse.security.accounts import add_user

NOTEBOOKS = sorted((Path(__file__).resolve().parents[3] / "notebooks").glob("*.ipynb"))


def test_there_are_at_least_three_notebooks_committed_without_outputs():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path.name


@pytest.fixture(scope="module")
def analyst_env(server_url, template_db):
    """One synced world for the module: the analyst's role is read-only, so no test here can change it."""
    db = open_database(server_url, template_db)
    with synced_mart_world(db) as world, pytest.MonkeyPatch.context() as monkeypatch:
        refresh_all(db.app_engine, db.admin_engine)
        with db.system() as session:
            franchise = tenant_id_by_code(session, "fr-sync", "franchise")
            add_user(session, username="an", full_name="Ana Lyst", password="Correct-Horse-Battery-9",
                     memberships=[(franchise, "analyst")])  # fmt: skip
        monkeypatch.setenv("DATABASE_URL", db.admin_url)
        monkeypatch.setenv("VETCONNECT_ANALYST", "an")
        monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[3]))
        yield world
    db.dispose()
    drop_database(server_url, db.name)


def test_the_analyst_sees_exactly_the_franchise_practices_read_only(analyst_env):
    from warehouse.marts import analysts as analytics

    an = analytics.connect()
    assert set(an.practice_ids) == {p.practice_id for p in analyst_env.practices}
    with an.session() as session:
        assert session.scalar(text("SELECT current_user")) == "vetconnect_analyst"
        assert session.scalar(text("SELECT count(DISTINCT practice_id) FROM mart_practice_day")) == 2
    with pytest.raises(Exception, match="read-only|permission denied"), an.session() as session:
        session.execute(text("DELETE FROM mart_practice_day"))
    an.engine.dispose()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_without_error(analyst_env, path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell (kernel: the venv's ipykernel)
