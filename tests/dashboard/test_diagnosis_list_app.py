"""The shared resources page's diagnosis list under AppTest: the franchise admin searches the franchise's coded
list, adds a term of the franchise's own (a term on the list already and a VeNom id with a letter are refused at
their fields, nothing saved) and finds it coded F-001 for every practice of the franchise; a practice manager is
not offered the page (a vet uses the list but does not extend it)."""

from __future__ import annotations

import polars as pl
from sqlalchemy import select, text

from tests.dashboard.test_lab_destinations_app import errors_at
from tests.dashboard.test_shared_resources_app import SHARED, _submit, _user
from tests.dashboard.test_ws_app import ok
from tests.dashboard.test_ws_permissions_nav import offered
from tests.practice_world import sign_in
from warehouse.records import diagnoses
from warehouse.schema.clinical import DiagnosisCode
from warehouse.security.accounts import access_context_for_user

KEY = "shared.diagnoses"


def _list(at) -> pl.DataFrame:
    tab = next(t for t in at.tabs if t.label == "Diagnosis list")
    return pl.from_pandas(tab.dataframe[0].value)


def test_the_franchise_admin_searches_the_list_and_adds_a_term_of_its_own(app_env):
    world = app_env.world
    fa, a2 = world.franchises["fa"], world.practices["a2"]
    _user(app_env, "fa-admin", "Admin Franchise A", fa, "franchise_admin")
    at = sign_in("fa-admin")
    at.switch_page(SHARED).run()
    ok(at)
    at.text_input(key=f"{KEY}.query").input("OTITIS").run()
    ok(at)
    assert _list(at).rows(named=True) == [
        {"Code": "VC-001", "VeNom id": "", "Term": "Otitis externa", "Species": "any species"}
    ]
    at.selectbox(key=f"{KEY}.species").set_value("rabbit")
    at.text_input(key=f"{KEY}.query").input("").run()
    assert set(_list(at)["Species"]) == {"rabbit", "any species"}

    at.text_input(key=f"{KEY}.term").input("otitis EXTERNA")
    _submit(at, f"{KEY}.add")
    assert errors_at(at, f"{KEY}.term") == ["otitis EXTERNA is on the list already (VC-001)."]
    at.text_input(key=f"{KEY}.term").input("Leishmaniosis")
    at.text_input(key=f"{KEY}.venom_id").input("47a1")
    at.selectbox(key=f"{KEY}.for_species").set_value("dog")
    _submit(at, f"{KEY}.add")
    assert errors_at(at, f"{KEY}.venom_id") == ["A VeNom concept id is a number of at most 16 digits."]
    assert not errors_at(at, f"{KEY}.term")
    with app_env.system() as session:
        assert session.scalar(select(DiagnosisCode).where(DiagnosisCode.term == "Leishmaniosis")) is None
    at.text_input(key=f"{KEY}.venom_id").input("4711")
    _submit(at, f"{KEY}.add")
    assert at.success[0].value == "Leishmaniosis added to the list as F-001."
    assert at.text_input(key=f"{KEY}.term").value == ""  # empty for the next term
    at.selectbox(key=f"{KEY}.species").set_value(None)
    at.text_input(key=f"{KEY}.query").input("leish").run()
    assert _list(at).rows(named=True) == [
        {"Code": "F-001", "VeNom id": "4711", "Term": "Leishmaniosis", "Species": "dog"}
    ]
    with app_env.system() as session:  # on the list of every practice of the franchise, the addition audited
        context = access_context_for_user(session, a2.user_id)
        audited = session.execute(text("SELECT detail->>'code' FROM audit_log WHERE entity = 'diagnosis_code'")
                                  ).scalars().all()  # fmt: skip
    assert audited == ["F-001"]
    with app_env.as_app(context) as session:
        assert [
            c.code for c in diagnoses.diagnosis_codes(session, a2.practice_id, query="Leishmaniosis")
        ] == ["F-001"]


def test_a_practice_manager_is_not_offered_the_list(app_env):
    a1 = app_env.world.practices["a1"]
    _user(app_env, "pm-a1", "Manager A1", a1.practice_id, "practice_manager")
    at = sign_in("pm-a1")
    ok(at)
    assert not offered(at, SHARED)
    assert not [w for w in at.text_input if (w.key or "").startswith(KEY)]
