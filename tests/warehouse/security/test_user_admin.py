"""User administration from the app (warehouse.security.user_admin, invitations): who an administrator sees
and may change — "this permission at this practice" — and what each action does to signing in."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import ProgrammingError

from tests.factories import PASSWORD
from warehouse.kernel.audit import verify_chain
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.operations import AuditLog
from warehouse.schema.tenancy import ROLES, AppUser, UserInvitation
from warehouse.security import invitations, user_admin
from warehouse.security.accounts import add_user, roles_by_practice
from warehouse.security.permissions import USERS_MANAGE, Actor, NotPermitted, permissions_for
from warehouse.security.sessions import check_session
from warehouse.security.signin import (
    Locked,
    MfaEnrolmentRequired,
    Rejected,
    SignedInUser,
    begin_sign_in,
    complete_enrolment,
)

NEW_PASSWORD = "Paard-Staart-Kliniek-42"


@pytest.fixture
def admins(ws_db):
    """A practice manager of a1 and the franchise admin of fa, as the services see them."""
    world = ws_db.world
    with ws_db.system() as session:
        manager = add_user(session, username="pm-a1", full_name="Manager A1", password=PASSWORD,
                           memberships=[(world.practices["a1"].practice_id, "practice_manager")])  # fmt: skip
        admin = add_user(session, username="fa-admin", full_name="Admin FA", password=PASSWORD,
                         memberships=[(world.franchises["fa"], "franchise_admin")])  # fmt: skip
        return (Actor(manager.id, roles_by_practice(session, manager.id)),
                Actor(admin.id, roles_by_practice(session, admin.id)))  # fmt: skip


def _usernames(users: list[user_admin.ManagedUser]) -> set[str]:
    return {u.username for u in users}


def _sign_in(ws_db, username: str, password: str = PASSWORD):  # noqa: ANN202
    return begin_sign_in(ws_db.admin_engine, username, password)


def test_a_practice_manager_sees_and_changes_only_their_practice(ws_db, admins):
    manager, admin = admins
    a1, a2 = ws_db.world.practices["a1"].practice_id, ws_db.world.practices["a2"].practice_id
    assert _usernames(user_admin.list_users(ws_db.admin_engine, manager, a1)) == {"vet-a1", "pm-a1"}
    # The franchise admin sees the franchise's own roles too.
    assert _usernames(user_admin.list_users(ws_db.admin_engine, admin, a1)) == {
        "vet-a1",
        "pm-a1",
        "fm-a",
        "fa-admin",
    }
    with pytest.raises(NotPermitted):
        user_admin.list_users(ws_db.admin_engine, manager, a2)
    vet_a2 = ws_db.world.practices["a2"].user_id
    with pytest.raises(NotPermitted):
        user_admin.grant_role(ws_db.admin_engine, manager, a2, vet_a2, "nurse")
    with pytest.raises(NotPermitted):  # a user of another practice is not theirs to pull in
        user_admin.grant_role(ws_db.admin_engine, manager, a1, vet_a2, "nurse")
    vet_a1 = ws_db.world.practices["a1"].user_id
    with pytest.raises(NotPermitted, match="franchise's administrator"):
        user_admin.grant_role(ws_db.admin_engine, manager, a1, vet_a1, "franchise_admin")
    fm = next(u for u in user_admin.list_users(ws_db.admin_engine, admin, a1) if u.username == "fm-a")
    assert fm.roles[0].franchise_level and fm.roles[0].may_revoke  # the franchise admin's to revoke
    with pytest.raises(NotPermitted):
        user_admin.revoke_role(
            ws_db.admin_engine, manager, fm.id, ws_db.world.franchises["fa"], "franchise_manager"
        )
    with pytest.raises(NotPermitted):
        user_admin.set_active(ws_db.admin_engine, manager, a1, fm.id, False)
    # The franchise admin grants franchise roles; nothing of the refusals above was written.
    user_admin.grant_role(ws_db.admin_engine, admin, a1, vet_a1, "analyst")
    with ws_db.system() as session:
        assert "analyst" in roles_by_practice(session, vet_a1)[a2]
        assert "nurse" not in roles_by_practice(session, vet_a2).get(a2, frozenset())


def test_an_account_shared_with_another_practice_is_changed_only_by_who_manages_both(ws_db, admins):
    manager, admin = admins
    a1 = ws_db.world.practices["a1"].practice_id
    vet_a2 = ws_db.world.practices["a2"].user_id
    user_admin.grant_role(ws_db.admin_engine, admin, ws_db.world.practices["a2"].practice_id, vet_a2, "nurse")
    user_admin.grant_role(ws_db.admin_engine, admin, a1, vet_a2, "veterinarian")
    listed = {u.username: u for u in user_admin.list_users(ws_db.admin_engine, manager, a1)}
    assert not listed["vet-a2"].may_change_account and listed["vet-a1"].may_change_account
    # Their role at a1 is the manager's to revoke; the one at a2 is not.
    assert {(r.tenant_name, r.may_revoke) for r in listed["vet-a2"].roles} == {("Praktijk a1", True),
                                                                               ("Praktijk a2", False)}  # fmt: skip
    with pytest.raises(NotPermitted, match="also works where you do not manage users"):
        user_admin.set_active(ws_db.admin_engine, manager, a1, vet_a2, False)
    # Ending sessions only protects: allowed.
    assert user_admin.end_sessions(ws_db.admin_engine, manager, a1, vet_a2) == 0
    user_admin.set_active(ws_db.admin_engine, admin, a1, vet_a2, False)
    assert isinstance(_sign_in(ws_db, "vet-a2"), Rejected)


def test_an_added_user_sets_their_password_through_the_one_time_link_and_signs_in(ws_db, admins):
    manager, _ = admins
    a1 = ws_db.world.practices["a1"].practice_id
    with pytest.raises(user_admin.UserAdminError) as refused:
        user_admin.add_user(ws_db.admin_engine, manager, a1, username="Bad Name", full_name="X", email="",
                            role="receptionist")  # fmt: skip
    assert refused.value.field == "username"
    with pytest.raises(user_admin.UserAdminError) as refused:
        user_admin.add_user(ws_db.admin_engine, manager, a1, username="vet-a1", full_name="X", email="",
                            role="receptionist")  # fmt: skip
    assert refused.value.field == "username" and "already taken" in str(refused.value)
    invitation = user_admin.add_user(ws_db.admin_engine, manager, a1, username="Balie-2",
                                     full_name="  Anna  de Vries ", email="anna@example.nl",
                                     role="receptionist", session_id=None)  # fmt: skip
    assert invitation.expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(days=2)
    listed = {u.username: u for u in user_admin.list_users(ws_db.admin_engine, manager, a1)}
    assert listed["balie-2"].full_name == "Anna de Vries" and listed["balie-2"].invitation_pending
    assert isinstance(_sign_in(ws_db, "balie-2", NEW_PASSWORD), Rejected)  # no password of theirs yet
    assert invitations.invited_username(ws_db.admin_engine, invitation.token) == "balie-2"
    with pytest.raises(invitations.InvitationError) as refused:
        invitations.accept(ws_db.admin_engine, invitation.token, password="kort", repeat="kort")
    assert refused.value.field == "password"
    assert invitations.accept(ws_db.admin_engine, invitation.token, password=NEW_PASSWORD,
                              repeat=NEW_PASSWORD) == "balie-2"  # fmt: skip
    signed_in = _sign_in(ws_db, "balie-2", NEW_PASSWORD)
    assert isinstance(signed_in, SignedInUser) and signed_in.practice_roles == {
        a1: frozenset({"receptionist"})
    }
    with pytest.raises(invitations.InvitationError, match="not valid"):  # once only
        invitations.accept(ws_db.admin_engine, invitation.token, password=NEW_PASSWORD, repeat=NEW_PASSWORD)
    # Once they signed in, no new link (it would hand their account to whoever holds it).
    with pytest.raises(user_admin.UserAdminError, match="signed in already"):
        user_admin.invite_again(ws_db.admin_engine, manager, a1, listed["balie-2"].id)
    # Before that: a new link voids the older one; an expired one does not work.
    invited = user_admin.add_user(ws_db.admin_engine, manager, a1, username="nurse-2", full_name="Nurse Two",
                                  email="", role="nurse")  # fmt: skip
    first = user_admin.invite_again(ws_db.admin_engine, manager, a1, invited.user_id)
    second = user_admin.invite_again(ws_db.admin_engine, manager, a1, invited.user_id)
    with pytest.raises(invitations.InvitationError):
        invitations.invited_username(ws_db.admin_engine, invited.token)
    with pytest.raises(invitations.InvitationError):
        invitations.invited_username(ws_db.admin_engine, first.token)
    later = dt.datetime.now(dt.UTC) + invitations.INVITATION_TTL + dt.timedelta(minutes=1)
    with pytest.raises(invitations.InvitationError):
        invitations.invited_username(ws_db.admin_engine, second.token, now=later)


def test_deactivate_ends_sessions_and_refuses_sign_in_until_reactivated(ws_db, admins):
    manager, _ = admins
    a1, vet = ws_db.world.practices["a1"].practice_id, ws_db.world.practices["a1"].user_id
    live = _sign_in(ws_db, "vet-a1")
    assert isinstance(live, SignedInUser)
    with pytest.raises(user_admin.UserAdminError, match="your own account"):
        user_admin.set_active(ws_db.admin_engine, manager, a1, manager.user_id, False)
    user_admin.set_active(ws_db.admin_engine, manager, a1, vet, False)
    assert check_session(ws_db.app_engine, live.session_token).ended == "account deactivated"
    assert isinstance(_sign_in(ws_db, "vet-a1"), Rejected)
    user_admin.set_active(ws_db.admin_engine, manager, a1, vet, True)
    assert isinstance(_sign_in(ws_db, "vet-a1"), SignedInUser)


def test_unlock_lets_a_locked_user_sign_in_again(ws_db, admins):
    manager, _ = admins
    a1, vet = ws_db.world.practices["a1"].practice_id, ws_db.world.practices["a1"].user_id
    outcomes = [_sign_in(ws_db, "vet-a1", "wrong-password") for _ in range(5)]
    assert isinstance(outcomes[-1], Locked)
    assert isinstance(_sign_in(ws_db, "vet-a1"), Locked)
    listed = {u.id: u for u in user_admin.list_users(ws_db.admin_engine, manager, a1)}
    assert listed[vet].locked_until is not None
    user_admin.unlock(ws_db.admin_engine, manager, a1, vet)
    assert isinstance(_sign_in(ws_db, "vet-a1"), SignedInUser)


def test_reset_two_step_sign_in_requires_enrolment_again_and_ends_sessions(ws_db, admins):
    _, admin = admins
    a1 = ws_db.world.practices["a1"].practice_id
    pending = _sign_in(ws_db, "pm-a1")
    assert isinstance(pending, MfaEnrolmentRequired)
    code = pyotp.TOTP(pending.enrolment.secret).now()
    live = complete_enrolment(ws_db.admin_engine, pending, code, master_key=bytes(range(32)))
    assert isinstance(live, SignedInUser)
    assert not isinstance(_sign_in(ws_db, "pm-a1"), MfaEnrolmentRequired)  # a challenge now
    assert user_admin.reset_mfa(ws_db.admin_engine, admin, a1, live.user_id) == 1
    assert check_session(ws_db.app_engine, live.session_token).ended == "revoked by an administrator"
    assert isinstance(_sign_in(ws_db, "pm-a1"), MfaEnrolmentRequired)


def test_end_sessions_signs_the_user_out_everywhere(ws_db, admins):
    manager, _ = admins
    a1 = ws_db.world.practices["a1"].practice_id
    first, second = _sign_in(ws_db, "vet-a1"), _sign_in(ws_db, "vet-a1")
    assert user_admin.end_sessions(ws_db.admin_engine, manager, a1, first.user_id, session_id=None) == 2
    for signed_in in (first, second):
        assert check_session(ws_db.app_engine, signed_in.session_token).ended == "revoked by an administrator"


def test_every_action_is_audited_at_the_practices_it_affects_with_the_admins_session(ws_db, admins):
    _, admin = admins
    world = ws_db.world
    a1, a2 = world.practices["a1"].practice_id, world.practices["a2"].practice_id
    vet = world.practices["a1"].user_id
    user_admin.grant_role(ws_db.admin_engine, admin, a1, vet, "nurse", session_id=None)
    user_admin.grant_role(ws_db.admin_engine, admin, a1, vet, "franchise_manager", session_id=4242)
    user_admin.unlock(ws_db.admin_engine, admin, a1, vet, session_id=4242)
    with ws_db.system() as session:
        entries = session.execute(
            select(AuditLog.practice_id, AuditLog.action, AuditLog.actor_user_id, AuditLog.session_id,
                   AuditLog.detail)
            .where(AuditLog.entity == "app_user", AuditLog.entity_ids.contains([vet]))
            .order_by(AuditLog.practice_id, AuditLog.seq)
        ).all()  # fmt: skip
        fa = world.franchises["fa"]
        assert [tuple(e)[:4] for e in entries] == [
            (a1, "grant_role", admin.user_id, None),
            (a1, "grant_role", admin.user_id, 4242),
            (a1, "unlock", admin.user_id, 4242),
            (a2, "grant_role", admin.user_id, 4242),  # a franchise role counts at a2 too
            (a2, "unlock", admin.user_id, 4242),  # the account is theirs at a2 as well now
        ]
        assert entries[1].detail == {"role": "franchise_manager", "tenant_id": fa}
        assert verify_chain(session).ok
        assert session.get(AppUser, vet).failed_logins == 0


@pytest.mark.parametrize("role", ROLES)
def test_every_action_is_refused_at_a_practice_where_the_role_does_not_manage_users(ws_db, role):
    a1 = ws_db.world.practices["a1"]
    actor = Actor(None, {a1.practice_id: frozenset({role})}, {a1.practice_id: "Praktijk a1"})
    engine, vet = ws_db.admin_engine, a1.user_id
    calls = {
        "list_users": lambda: user_admin.list_users(engine, actor, a1.practice_id),
        "add_user": lambda: user_admin.add_user(engine, actor, a1.practice_id, username="nieuw", full_name="Nieuw",
                                                email="", role="receptionist"),
        "invite_again": lambda: user_admin.invite_again(engine, actor, a1.practice_id, vet),
        "grant_role": lambda: user_admin.grant_role(engine, actor, a1.practice_id, vet, "nurse"),
        "revoke_role": lambda: user_admin.revoke_role(engine, actor, vet, a1.practice_id, "veterinarian"),
        "set_active": lambda: user_admin.set_active(engine, actor, a1.practice_id, vet, False),
        "unlock": lambda: user_admin.unlock(engine, actor, a1.practice_id, vet),
        "reset_mfa": lambda: user_admin.reset_mfa(engine, actor, a1.practice_id, vet),
        "end_sessions": lambda: user_admin.end_sessions(engine, actor, a1.practice_id, vet),
    }  # fmt: skip
    if USERS_MANAGE in permissions_for({role}):
        assert user_admin.list_users(engine, actor, a1.practice_id)  # permitted; the rest is tested above
        return
    for call in calls.values():
        with pytest.raises(NotPermitted, match="Praktijk a1"):
            call()
    # Refused before anything was written.
    with ws_db.system() as session:
        assert session.get(AppUser, vet).is_active
        assert roles_by_practice(session, vet) == {a1.practice_id: frozenset({"veterinarian"})}
        assert session.scalar(select(AppUser.id).where(AppUser.username == "nieuw")) is None


def test_the_application_role_reads_no_invitation(ws_db, admins):
    manager, _ = admins
    a1 = ws_db.world.practices["a1"]
    user_admin.add_user(ws_db.admin_engine, manager, a1.practice_id, username="nieuw", full_name="Nieuw",
                        email="", role="receptionist")  # fmt: skip
    context = AccessContext.for_practices([a1.practice_id], user_id=manager.user_id)
    with pytest.raises(ProgrammingError, match="permission denied"), ws_db.as_app(context) as session:
        session.execute(select(UserInvitation.token_sha256)).all()
    with ws_db.system() as session:
        assert session.scalar(select(func.count()).select_from(UserInvitation)) == 1
