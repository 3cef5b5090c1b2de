"""The referrals page under AppTest: a1's vet refers Bello to a practice of another franchise (a refusal shows at
its field first), b1's vet reads the shared history and sends findings back, and a1's patient record shows them."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import sign_in

PAGE = "workspaces/referrals.py"


def test_a_referral_from_refer_to_findings_back(app_env):
    b1 = app_env.world.practices["b1"]
    at = sign_in("vet-a1")
    at.switch_page(PAGE).run()
    ok(at)
    at.text_input(key="ref.query").input("Bello").run()
    at.selectbox(key="ref.patient").set_value(app_env.world.practices["a1"].patient_id)
    at.selectbox(key="ref.to").set_value(b1.practice_id)
    at.selectbox(key="ref.how").set_value("phone")
    next(b for b in at.button if (b.key or "").startswith("FormSubmitter:ref.form")).click().run()
    ok(at)
    assert "Say why the patient is referred." in [e.value for e in at.error]
    at.text_area(key="ref.reason").input("Cardiology work-up")
    next(b for b in at.button if (b.key or "").startswith("FormSubmitter:ref.form")).click().run()
    ok(at)
    assert any("Referred to Praktijk b1" in s.value for s in at.success)
    with app_env.system() as session:
        referral = session.execute(text("SELECT practice_id, id FROM referral WHERE to_practice_id = :b"),
                                   {"b": b1.practice_id}).one()  # fmt: skip

    at = sign_in("vet-b1")
    at.switch_page(PAGE).run()
    ok(at)
    key = f"{referral.practice_id}.{referral.id}"
    at.button(key=f"ref.read.{key}").click().run()
    ok(at)
    assert "J. Jansen-a1 · 06-12345678" in texts(at)
    at.text_area(key=f"ref.f.text.{key}").input("Mild mitral valve disease.")
    at.text_input(key=f"ref.f.diagnosis.{key}").input("Mitral valve disease")
    next(b for b in at.button if (b.key or "").startswith(f"FormSubmitter:ref.findings.{key}")).click().run()
    ok(at)
    assert any("Findings sent to Praktijk a1" in s.value for s in at.success)

    at = sign_in("vet-a1")
    at.session_state["rec.patient"] = app_env.world.practices["a1"].patient_id
    at.switch_page("workspaces/records.py").run()
    ok(at)
    assert "Referral reports" in [s.value for s in at.subheader]
    assert "Mild mitral valve disease." in texts(at)
