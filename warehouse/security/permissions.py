"""Permissions per role per module. Pages ask ``allowed(roles, ...)``; services check it again for writes.

A user's permissions are the union over their roles. The database (RLS) decides *which practices*; these
decide *what* a role may do there.
"""

from __future__ import annotations

from collections.abc import Iterable

# Reading modules (what the navigation shows)
HUB = "hub"
SCHEDULE_READ = "schedule.read"
WAITING_ROOM = "waiting_room"
RECORDS_READ = "records.read"
BILLING_READ = "billing.read"
CLIENTS_READ = "clients.read"  # the client card: contact, animals, balance
DASHBOARD_FRANCHISE = "dashboard.franchise"  # franchise dashboard (issue 5)
DASHBOARD_PRACTICE = "dashboard.practice"  # practice dashboard (issue 5)
# Writing
SCHEDULE_WRITE = "schedule.write"  # book, reschedule, cancel, no-show, check in
CONSULT_WRITE = "consult.write"  # start/finish a consult: clinical
RECORDS_WRITE = "records.write"  # notes, vaccinations, prescriptions: clinical
BILLING_WRITE = "billing.write"
DEVICE_INBOX = (
    "devices.inbox"  # match unmatched lab/imaging messages to patients: clinical staff and managers
)

CLINICAL_WRITES = frozenset({CONSULT_WRITE, RECORDS_WRITE})
_FRONT_DESK = {HUB, SCHEDULE_READ, WAITING_ROOM, SCHEDULE_WRITE, BILLING_READ, BILLING_WRITE, CLIENTS_READ}
_CLINICAL = _FRONT_DESK | {RECORDS_READ, CONSULT_WRITE, RECORDS_WRITE, DEVICE_INBOX}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "franchise_admin": frozenset(_FRONT_DESK | {RECORDS_READ, DASHBOARD_FRANCHISE, DASHBOARD_PRACTICE}),
    "franchise_manager": frozenset(_FRONT_DESK | {RECORDS_READ, DASHBOARD_FRANCHISE, DASHBOARD_PRACTICE}),
    "practice_manager": frozenset(_FRONT_DESK | {RECORDS_READ, DASHBOARD_PRACTICE, DEVICE_INBOX}),
    "veterinarian": frozenset(_CLINICAL),
    "nurse": frozenset(_CLINICAL),
    "receptionist": frozenset(_FRONT_DESK),
    "analyst": frozenset({HUB}),
}


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def allowed(roles: Iterable[str], permission: str) -> bool:
    return permission in permissions_for(roles)


class NotPermitted(PermissionError):
    """The signed-in user's roles do not include the permission an action needs."""


def require(roles: Iterable[str], permission: str) -> None:
    if not allowed(roles, permission):
        raise NotPermitted(f"your role may not do this ({permission})")
