"""`vetconnect tenants link-animana CODE ANIMANA_ID` through Typer's CliRunner, against the simulator over HTTP
and a real database: the link the sync then follows, and one clear line with exit code 1 for what cannot be
linked."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from connectors.animana.simulator import running_simulator
from connectors.animana.sync.links import linked_practices
from tests.animana_sync_support import MASTER_KEY, SECRET
from vetconnect.cli import app
from vetconnect.settings import get_settings
from warehouse.tenants.admin import add_franchise, add_practice


@pytest.fixture
def unlinked(fresh_db, monkeypatch) -> Iterator:  # noqa: ANN001
    """Two practices not linked to Animana yet, and the environment of a `vetconnect` pointing at a simulator
    that knows Animana practices 1001 and 1002."""
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-link", name="Link Franchise")
        for code in ("link-a", "link-b"):
            add_practice(session, franchise_id=franchise.id, code=code, name=code, master_key=MASTER_KEY)
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        for name, value in {
            "DATABASE_URL": fresh_db.admin_url,
            "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
            "VETCONNECT_ANIMANA_URL": sim.base_url,
            "VETCONNECT_ANIMANA_CLIENT_ID": sim.client_id,
            "VETCONNECT_ANIMANA_CLIENT_SECRET": sim.client_secret,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield fresh_db
    get_settings.cache_clear()


def _link(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, ["tenants", "link-animana", *args])


def _error(result) -> str:  # noqa: ANN001
    """The one line a refused link prints, after checking it is one line and the exit code is 1."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_practice_links_to_an_animana_practice_the_api_lists_and_the_sync_follows_it(unlinked):
    linked = _link("link-a", "1001")
    assert linked.exit_code == 0, linked.output
    assert "practice link-a linked to Animana practice 1001" in linked.output
    assert _link("link-a", "1001").exit_code == 0  # again: nothing changes

    assert [(p.code, p.animana_id) for p in linked_practices(unlinked.admin_engine)] == [("link-a", 1001)]


def test_what_cannot_be_linked_is_refused_with_one_line(unlinked):
    assert _link("link-a", "1001").exit_code == 0

    assert "Animana has no practice with id 9999" in _error(_link("link-b", "9999"))
    assert "no practice with code 'nope'" in _error(_link("nope", "1002"))
    assert "Animana practice 1001 is already linked to practice 'link-a'" in _error(_link("link-b", "1001"))

    assert [(p.code, p.animana_id) for p in linked_practices(unlinked.admin_engine)] == [("link-a", 1001)]
