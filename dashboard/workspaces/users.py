"""Users: the people with a role at the practice, and what an administrator does for them — add (with a
one-time set-password link), grant and revoke roles, deactivate, unlock, reset two-step sign-in, sign out
everywhere. What may be done to whom is decided by ``warehouse.security.user_admin``; this page lays it out."""

from __future__ import annotations

import streamlit as st

from dashboard.components import invitation
from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.kernel import formatting as fmt
from warehouse.security import user_admin
from warehouse.security.permissions import USERS_MANAGE, NotPermitted
from warehouse.security.user_admin import ROLE_LABELS, ManagedUser, UserAdminError

state = st.session_state
if not ctx.may(USERS_MANAGE):
    st.error(f"Your role at {ctx.here()} cannot manage users.")
    st.stop()
practice_id = ctx.one_practice("users.practice")
ctx.breadcrumbs("Users", ctx.practice_name(practice_id))
st.title("Users")
engine = app_runtime().admin_engine
actor = ctx.actor()
session_id = ctx.user().session_id
zone = ctx.zone(practice_id)
if flash := state.pop("users.flash", None):
    st.success(flash)
if issued := state.pop("users.invitation", None):
    username, token, expires_at = issued
    st.info(
        f"Send this link to **{username}** to set their password. It is shown only now, works once and "
        f"expires on {fmt.date_time(expires_at, zone)}."
    )
    st.code(invitation.link(token), language=None)


def _done(message: str, *, issued: tuple | None = None) -> None:
    state["users.flash"] = message
    if issued is not None:
        state["users.invitation"] = issued
    st.rerun()


def _status(user: ManagedUser) -> str:
    if not user.is_active:
        return "Deactivated"
    if user.locked_until is not None:
        return f"Locked until {fmt.time(user.locked_until, zone)}"
    if user.invitation_pending and user.last_login_at is None:
        return "Invited"
    return "Active"


users = user_admin.list_users(engine, actor, practice_id)
st.dataframe(
    [
        {
            "Name": u.full_name,
            "User name": u.username,
            "E-mail": u.email or "",
            "Roles": ", ".join(f"{ROLE_LABELS[r.role]} ({r.tenant_name})" for r in u.roles),
            "Status": _status(u),
            "Two-step sign-in": "On" if u.mfa_enabled else "Off",
            "Last sign-in": fmt.date_time(u.last_login_at, zone) if u.last_login_at else "never",
            "Live sessions": u.live_sessions,
        }
        for u in users
    ],
    hide_index=True,
    width="stretch",
    key="users.table",
)

roles_here = user_admin.grantable_roles(actor, practice_id)
# A new form (new keys) after each user added: the fields start empty again, while after a refusal they keep
# what was typed for correcting.
form = f"users.add.{state.setdefault('users.added', 0)}"
with st.expander("Add a user", expanded=bool(state.get(f"{form}.username"))):
    with st.form(form):
        cols = st.columns(2)
        new_username = cols[0].text_input("User name", key=f"{form}.username", max_chars=64)
        slots: dict[str, object] = {"username": cols[0].empty()}
        new_name = cols[1].text_input("Full name", key=f"{form}.full_name", max_chars=200)
        slots["full_name"] = cols[1].empty()
        new_email = cols[0].text_input("E-mail (optional)", key=f"{form}.email", max_chars=254)
        slots["email"] = cols[0].empty()
        new_role = cols[1].selectbox("Role", roles_here, format_func=ROLE_LABELS.get, key=f"{form}.role")
        slots["role"] = cols[1].empty()
        add = st.form_submit_button("Add user", type="primary")
    if add:
        try:
            issued_invitation = user_admin.add_user(
                engine, actor, practice_id, username=new_username, full_name=new_name, email=new_email,
                role=new_role, session_id=session_id,
            )  # fmt: skip
        except UserAdminError as exc:
            ctx.field_errors({exc.field: str(exc)}, slots)
        except NotPermitted as exc:
            st.error(str(exc))
        else:
            username = new_username.strip().lower()
            state["users.added"] += 1
            _done(
                f"{username} added as {ROLE_LABELS[new_role].lower()}.",
                issued=(username, issued_invitation.token, issued_invitation.expires_at),
            )

if not users:
    st.stop()
st.subheader("Manage a user")
by_id = {u.id: u for u in users}
chosen = by_id[st.selectbox("User", list(by_id), format_func=lambda i: f"{by_id[i].full_name} ({by_id[i].username})",
                            key="users.chosen")]  # fmt: skip


def _act(action, message: str, *args: object) -> None:  # noqa: ANN001
    """Run one of the administrator's actions on the chosen user; say what happened, or why it was refused."""
    try:
        result = action(engine, actor, *args, session_id=session_id)
    except (UserAdminError, NotPermitted) as exc:
        st.error(str(exc))
    else:
        _done(message.format(name=chosen.full_name, result=result))


st.markdown("**Roles**")
for role in chosen.roles:
    cols = st.columns([4, 1])
    cols[0].write(f"{ROLE_LABELS[role.role]} at {role.tenant_name}")
    if role.may_revoke and cols[1].button("Revoke", key=f"users.revoke.{role.tenant_id}.{role.role}"):
        _act(user_admin.revoke_role, f"{{name}} is no longer {ROLE_LABELS[role.role].lower()} at "
             f"{role.tenant_name}.", chosen.id, role.tenant_id, role.role)  # fmt: skip
cols = st.columns([3, 1])
grant = cols[0].selectbox("Grant a role", roles_here, format_func=ROLE_LABELS.get, key="users.grant.role")
if cols[1].button("Grant", key="users.grant"):
    _act(user_admin.grant_role, f"{{name}} is now {ROLE_LABELS[grant].lower()}; they sign in again to use it.",
         practice_id, chosen.id, grant)  # fmt: skip

st.markdown("**Account**")
if not chosen.may_change_account:
    st.caption(
        "They also work where you do not manage users, so only someone who manages users everywhere they "
        "work can deactivate, unlock or reset their account. You can still end their sessions."
    )
cols = st.columns(5)
if chosen.is_active:
    if cols[0].button("Deactivate", key="users.deactivate", disabled=not chosen.may_change_account):
        _act(user_admin.set_active, "{name} is deactivated and signed out everywhere.", practice_id, chosen.id,
             False)  # fmt: skip
elif cols[0].button("Reactivate", key="users.reactivate", disabled=not chosen.may_change_account):
    _act(user_admin.set_active, "{name} can sign in again.", practice_id, chosen.id, True)
if cols[1].button(
    "Unlock", key="users.unlock", disabled=not chosen.may_change_account or not chosen.locked_until
):
    _act(user_admin.unlock, "{name} is unlocked and can sign in again.", practice_id, chosen.id)
if cols[2].button("Reset two-step sign-in", key="users.reset_mfa",
                  disabled=not chosen.may_change_account or not chosen.mfa_enabled):  # fmt: skip
    _act(user_admin.reset_mfa, "{name}'s two-step sign-in is reset; they set it up again at their next sign-in "
         "({result} session(s) ended).", practice_id, chosen.id)  # fmt: skip
if cols[3].button("End all sessions", key="users.end_sessions", disabled=not chosen.live_sessions):
    _act(user_admin.end_sessions, "{name} is signed out everywhere ({result} session(s) ended).", practice_id,
         chosen.id)  # fmt: skip
if cols[4].button("New invitation link", key="users.invite",
                  disabled=not chosen.may_change_account or chosen.last_login_at is not None):  # fmt: skip
    try:
        again = user_admin.invite_again(engine, actor, practice_id, chosen.id, session_id=session_id)
    except (UserAdminError, NotPermitted) as exc:
        st.error(str(exc))
    else:
        _done(f"A new link for {chosen.username}; older links no longer work.",
              issued=(chosen.username, again.token, again.expires_at))  # fmt: skip
