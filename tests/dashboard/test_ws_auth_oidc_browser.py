"""OIDC sign-in end to end: Chromium, ``streamlit run`` with ``[auth]`` in a secrets file, and a real OpenID
provider started by the test (oidc-provider-mock: Authlib's authorization server with discovery, JWKS,
signed RS256 ID tokens, nonce and PKCE). Nothing of ours is mocked: Streamlit's ``st.login`` does the
authorization-code flow, verifies the ID token, and the sign-in page maps it to the linked account.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    free_port,
    settle,
    shot,
    streamlit_app,
)
from warehouse.schema.tenancy import AppUser, UserSession
from warehouse.security.oidc import link_identity

pytestmark = BROWSER


@pytest.fixture
def oidc_issuer() -> Iterator[str]:
    import oidc_provider_mock

    user = oidc_provider_mock.User(
        sub="idp-vet-a1", claims={"email": "vet.a1@praktijk.nl", "email_verified": True, "name": "Vet A1"}
    )
    stranger = oidc_provider_mock.User(sub="idp-stranger", claims={"email": "stranger@elders.nl"})
    with oidc_provider_mock.run_server_in_thread(user_claims=[user, stranger]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def oidc_app(ws_db, oidc_issuer: str, tmp_path: Path) -> Iterator[tuple[str, object]]:
    port = free_port()
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        f"""
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "{secrets.token_urlsafe(32)}"

[auth.praktijkidp]
display_name = "Praktijk IdP"
client_id = "vetconnect"
client_secret = "{secrets.token_urlsafe(16)}"
server_metadata_url = "{oidc_issuer}/.well-known/openid-configuration"
"""
    )
    with ws_db.system(reason="admin links vet-a1 to the practice IdP") as session:
        vet = session.scalar(select(AppUser.id).where(AppUser.username == "vet-a1"))
        link_identity(session, user_id=vet, issuer=oidc_issuer, email="vet.a1@praktijk.nl")
    with streamlit_app(
        ws_db, port, "--secrets.files", str(secrets_file), log_name="streamlit-oidc.log"
    ) as url:
        yield url, ws_db


def test_sign_in_with_the_identity_provider_maps_to_the_linked_account_only(oidc_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = oidc_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        # Someone the provider knows but no administrator linked: refused by name, nothing created.
        page.goto(url)
        page.get_by_role("button", name="Sign in with Praktijk IdP").click()
        page.get_by_role("button", name="idp-stranger").click()
        expect(page.get_by_text("stranger@elders.nl is not linked to a VetConnect account")).to_be_visible()
        shot(page, "20-oidc-unknown-identity.png")
        # The linked vet: provider, callback, then straight into the hub as vet-a1.
        page.get_by_role("button", name="Sign in with Praktijk IdP").click()
        page.get_by_role("button", name="idp-vet-a1").click()
        expect(page.get_by_text("Goedendag, Vet")).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(page, "21-oidc-signed-in.png")
        settle(page)
        browser.close()
    with db.system() as session:
        sessions = session.execute(
            select(AppUser.username, UserSession.method).join(AppUser, AppUser.id == UserSession.user_id)
        ).all()
    assert sessions == [("vet-a1", "oidc")]
