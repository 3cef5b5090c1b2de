"""The Integration page's cut-over under AppTest, on a synced practice and the simulator over HTTP: a practice
manager rehearses the billing module, the cut-over stops on a drifted payment and lists it, the reason is asked
for at its field, and accepting with a reason makes the module native."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.dashboard.test_ws_permissions_nav import ok
from tests.factories import PASSWORD
from tests.practice_world import sign_in
from vetconnect.settings import get_settings
from warehouse.integration.capture import writing_as
from warehouse.security.accounts import add_user

MANAGER = "manager-sync"
INTEGRATION = "workspaces/integration.py"


@pytest.fixture
def page_env(synced_world: SyncWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncWorld]:
    world = synced_world
    for name, value in {
        "DATABASE_URL": world.db.admin_url,
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
        "VETCONNECT_ANIMANA_URL": world.sim.base_url,
        "VETCONNECT_ANIMANA_CLIENT_ID": world.sim.client_id,
        "VETCONNECT_ANIMANA_CLIENT_SECRET": world.sim.client_secret,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VETCONNECT_DEMO", raising=False)
    get_settings.cache_clear()
    with world.db.system() as session:
        add_user(session, username=MANAGER, full_name="Manager Sync", password=PASSWORD,
                 memberships=[(world.practices[0].practice_id, "practice_manager")])  # fmt: skip
    yield world
    get_settings.cache_clear()


def test_the_manager_cuts_billing_over_after_accepting_a_listed_difference(page_env: SyncWorld):
    practice = page_env.practices[0]
    with page_env.db.system("test: a payment that drifted") as session:
        writing_as(session, "writeback")
        drifted = session.execute(
            text(
                "UPDATE payment SET amount_cents = amount_cents + 1 WHERE practice_id = :p "
                "AND id = (SELECT min(id) FROM payment WHERE practice_id = :p) RETURNING animana_id"
            ),
            {"p": practice.practice_id},
        ).scalar_one()

    at = sign_in(MANAGER)
    at.switch_page(INTEGRATION).run()
    ok(at)
    at.selectbox(key="cutover.module").select("invoices").run()
    at.button(key="cutover.dry").click().run()
    ok(at)
    reconciliation = at.dataframe[1].value  # after the status table
    assert list(reconciliation["Resource"]) == ["invoices", "payments"]
    differences = at.dataframe[2].value.to_dict("records")
    assert differences == [{"Resource": "payments", "Animana id": drifted, "Difference": "different",
                            "Fields": "amount_cents", "Note": "–"}]  # fmt: skip

    at.button(key="cutover.go").click().run()
    ok(at)
    assert any("stopped on these differences" in w.value for w in at.warning)
    at.button(key="cutover.accept").click().run()
    assert any("Say why" in e.value for e in at.error)  # at the reason's field, nothing switched
    at.text_input(key="cutover.reason").input("Rounding corrected at the desk").run()
    at.button(key="cutover.accept").click().run()
    ok(at)
    assert any("native" in s.value and "Rounding corrected at the desk" in s.value for s in at.success)
    with page_env.db.system() as session:
        mode = session.execute(
            text("SELECT mode FROM practice_module_mode WHERE practice_id = :p AND module = 'invoices'"),
            {"p": practice.practice_id},
        ).scalar_one()
    assert mode == "native"
