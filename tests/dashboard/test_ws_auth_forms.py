"""The sign-in forms under AppTest: errors under the field they concern, and nothing typed is lost."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.factories import PASSWORD
from tests.practice_world import APP, click


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_sign_in_form_says_which_field_is_missing_and_keeps_what_was_typed(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not any(b.label.startswith("Sign in with") for b in at.button)  # no [auth] configured: no OIDC
    click(at, "Sign in")
    assert _errors(at) == ["Enter your user name.", "Enter your password."]
    at.text_input(key="sign_in.username").input("vet-a1")
    click(at, "Sign in")
    assert _errors(at) == ["Enter your password."]
    at.text_input(key="sign_in.password").input("not-the-password")
    click(at, "Sign in")
    assert _errors(at) == ["Unknown user name or wrong password."]
    assert at.text_input(key="sign_in.username").value == "vet-a1"
    assert at.text_input(key="sign_in.password").value == "not-the-password"


def test_code_form_refuses_a_malformed_code_before_checking_it_and_keeps_it(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="sign_in.username").input("fm-a")
    at.text_input(key="sign_in.password").input(PASSWORD)
    click(at, "Sign in")
    assert at.subheader[0].value == "Set up two-step sign-in"
    at.text_input(key="sign_in.enrol.code").input("12 34")
    click(at, "Confirm and sign in")
    assert _errors(at) == ["Enter the 6 digits from your authenticator app."]
    assert at.text_input(key="sign_in.enrol.code").value == "12 34"
    assert "user" not in at.session_state
