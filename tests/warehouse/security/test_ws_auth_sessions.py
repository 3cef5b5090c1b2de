"""Server-side sessions: the browser holds a token, the database decides whether it is still good.

Service tests against PostgreSQL (expiry by the database clock, every way a session ends, what the
application role may see), then the app under AppTest: a session revoked or expired on the server signs the
browser out with the reason, sign-out and "sign out everywhere" end the server sessions.
"""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from sqlalchemy import select, text

from tests.conftest import _libpq
from tests.factories import PASSWORD
from tests.practice_world import click, sign_in
from warehouse.schema.tenancy import UserSession
from warehouse.security import self_service, signin
from warehouse.security.accounts import deactivate_user, grant_role
from warehouse.security.oidc import link_identity
from warehouse.security.sessions import ABSOLUTE_TIMEOUT, check_session, live_sessions, revoke_sessions


def _signed_in(db, username: str = "vet-a1", user_agent: str | None = None) -> signin.SignedInUser:  # noqa: ANN001
    outcome = signin.begin_sign_in(db.admin_engine, username, PASSWORD, user_agent=user_agent)
    assert isinstance(outcome, signin.SignedInUser)
    return outcome


def _age(db, session_id: int, column: str, interval: str) -> None:  # noqa: ANN001
    """Move a session's clock back, as if time had passed (the database clock decides expiry)."""
    assert column in ("last_seen_at", "expires_at")
    with psycopg.connect(_libpq(db.admin_url)) as conn:
        conn.execute(
            f"UPDATE user_session SET {column} = now() - %s::interval WHERE id = %s", (interval, session_id)
        )


def test_a_session_is_a_hashed_token_checked_and_touched_on_each_load(ws_db):
    user = _signed_in(ws_db, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chromium/131")
    assert user.session_token and len(user.session_token) >= 40
    with ws_db.system() as session:
        row = session.get(UserSession, user.session_id)
    assert row.token_sha256 == hashlib.sha256(user.session_token.encode()).digest()
    assert row.user_agent.startswith("Mozilla/5.0") and row.method == "password"
    assert row.expires_at - row.created_at == ABSOLUTE_TIMEOUT
    check = check_session(ws_db.app_engine, user.session_token)
    assert (check.user_id, check.session_id, check.ended) == (user.user_id, user.session_id, None)
    # Activity is recorded, at most every 30 s (a rerun per keystroke does not write a row each time).
    _age(ws_db, user.session_id, "last_seen_at", "5 minutes")
    check_session(ws_db.app_engine, user.session_token)
    with ws_db.system() as session:
        seen = session.scalar(
            text("SELECT now() - last_seen_at FROM user_session WHERE id = :id"), {"id": user.session_id}
        )
    assert seen.total_seconds() < 5
    assert check_session(ws_db.app_engine, "not-a-token").ended == "unknown"
    assert check_session(ws_db.app_engine, user.session_token[:-1] + "x").ended == "unknown"


@pytest.mark.parametrize(
    ("column", "interval", "ended"),
    [("last_seen_at", "8 hours 1 minute", "idle timeout"), ("expires_at", "1 second", "absolute timeout")],
)
def test_idle_and_absolute_expiry_are_decided_by_the_server(ws_db, column, interval, ended):
    user = _signed_in(ws_db)
    _age(ws_db, user.session_id, "last_seen_at", "7 hours 59 minutes")
    assert check_session(ws_db.app_engine, user.session_token).ended is None  # just inside the idle limit
    _age(ws_db, user.session_id, column, interval)
    check = check_session(ws_db.app_engine, user.session_token)
    assert check.ended == ended and "Signed out" in check.message
    # Once ended, it stays ended even if the clock were turned back.
    _age(ws_db, user.session_id, "last_seen_at", "1 second")
    assert check_session(ws_db.app_engine, user.session_token).ended == ended


def test_every_way_a_session_ends(ws_db):
    a1 = ws_db.world.practices["a1"]
    # Password change: the other sessions end, the one it was changed from stays.
    here, elsewhere, colleague = _signed_in(ws_db), _signed_in(ws_db), _signed_in(ws_db, "vet-a2")
    with ws_db.as_app(here.context) as session:
        ended = self_service.change_password(session, here.user_id, current=PASSWORD, new="Paars-Kanaal-Fiets-42",
                                             repeat="Paars-Kanaal-Fiets-42", current_session_id=here.session_id)  # fmt: skip
    assert ended == 1
    assert check_session(ws_db.app_engine, here.session_token).ended is None
    assert check_session(ws_db.app_engine, elsewhere.session_token).ended == "password changed"
    assert check_session(ws_db.app_engine, colleague.session_token).ended is None
    # Sign out everywhere, in the user's own context: all their sessions, nobody else's.
    with ws_db.as_app(here.context) as session:
        assert revoke_sessions(session, here.user_id, reason="signed out everywhere") == 1
    assert check_session(ws_db.app_engine, here.session_token).ended == "signed out everywhere"
    assert check_session(ws_db.app_engine, colleague.session_token).ended is None
    # An administrator (system session, which records why) ends someone's sessions.
    with ws_db.system(reason="admin ended vet-a2's sessions: lost laptop") as session:
        assert revoke_sessions(session, colleague.user_id, reason="revoked by an administrator") == 1
    check = check_session(ws_db.app_engine, colleague.session_token)
    assert check.ended == "revoked by an administrator" and "administrator" in check.message
    # A change of roles ends the sessions whose cached profile it makes stale (trigger on membership).
    again = _signed_in(ws_db, "vet-a2")
    with ws_db.system() as session:
        grant_role(session, user_id=again.user_id, tenant_id=a1.practice_id, role="nurse")
    assert check_session(ws_db.app_engine, again.session_token).ended == "roles changed"
    # Deactivating the account ends its sessions (trigger on app_user) and refuses new sign-ins.
    last = _signed_in(ws_db, "vet-a2")
    with ws_db.system() as session:
        deactivate_user(session, last.user_id)
    assert check_session(ws_db.app_engine, last.session_token).ended == "account deactivated"
    assert isinstance(signin.begin_sign_in(ws_db.admin_engine, "vet-a2", PASSWORD), signin.Rejected)


def test_the_application_role_sees_and_ends_only_its_own_sessions_and_never_a_token_hash(ws_db):
    mine, theirs = _signed_in(ws_db), _signed_in(ws_db, "vet-a2")
    with ws_db.as_app(mine.context) as session:
        assert [row.id for row in live_sessions(session, mine.user_id)] == [mine.session_id]
        assert live_sessions(session, theirs.user_id) == []  # RLS: not visible
        assert revoke_sessions(session, theirs.user_id, reason="signed out everywhere") == 0
    assert check_session(ws_db.app_engine, theirs.session_token).ended is None
    with pytest.raises(Exception, match="permission denied"), ws_db.as_app(mine.context) as session:
        session.execute(select(UserSession.token_sha256))
    with pytest.raises(Exception, match="permission denied"), ws_db.as_app(mine.context) as session:
        session.execute(text("INSERT INTO user_session (user_id, token_sha256, method, idle_timeout, expires_at) "
                             "VALUES (:u, 'x', 'password', '8 hours', now() + interval '1 day')"),
                        {"u": mine.user_id})  # fmt: skip


def test_a_server_side_revocation_signs_the_browser_out_with_the_reason(app_env):
    at = sign_in("vet-a1")
    assert at.title[0].value.startswith("Goedendag")
    user = at.session_state["user"]
    with app_env.system(reason="admin ended vet-a1's sessions") as session:
        revoke_sessions(session, user.user_id, reason="revoked by an administrator")
    at.run()
    assert not at.exception
    assert "user" not in at.session_state
    assert at.info[0].value == "An administrator ended your session. Sign in again."
    assert at.button[0].label == "Sign in"


def test_an_idle_browser_session_is_signed_out_by_the_server(app_env):
    at = sign_in("vet-a1")
    _age(app_env, at.session_state["user"].session_id, "last_seen_at", "9 hours")
    at.run()
    assert "user" not in at.session_state
    assert "8 hours without activity" in at.info[0].value


def test_sign_out_and_sign_out_everywhere_end_the_server_sessions(app_env):
    at = sign_in("vet-a1")
    first = at.session_state["user"]
    click(at, "Sign out")
    assert "user" not in at.session_state
    assert check_session(app_env.app_engine, first.session_token).ended == "signed out"
    with app_env.system(reason="admin links vet-a1 to the practice IdP") as session:
        link_identity(
            session, user_id=first.user_id, issuer="https://idp.praktijk.nl", email="vet.a1@praktijk.nl"
        )
    phone, laptop = sign_in("vet-a1"), sign_in("vet-a1")
    laptop.switch_page("workspaces/account.py").run()
    assert not laptop.exception
    assert len(laptop.dataframe[0].value) == 2  # both live sessions listed
    assert any("vet.a1@praktijk.nl at https://idp.praktijk.nl" in c.value for c in laptop.caption)
    click(laptop, "Sign out everywhere")
    assert laptop.info[0].value == "You signed out on every device."
    phone.run()
    assert "user" not in phone.session_state
    assert phone.info[0].value == "You signed out on every device."
