"""The page table: which workspaces exist, who may open them, and which workspace opens a search hit.

To add a workspace, add one ``PageSpec`` (and, if it opens search hits, a line in ``OPENS``); ``app.py``
builds the navigation from this table and the signed-in user's permissions at the practice chosen in the
switcher (``session.permissions()``).
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.security.permissions import (
    AUDIT_READ,
    BILLING_READ,
    CLIENTS_MERGE,
    CLIENTS_READ,
    CLIENTS_WRITE,
    DASHBOARD_FRANCHISE,
    DASHBOARD_PRACTICE,
    DEVICE_INBOX,
    HUB,
    INTEGRATION_MANAGE,
    PRACTICE_OVERRIDES,
    PRACTICE_SETTINGS,
    RECORDS_READ,
    SCHEDULE_READ,
    SHARED_RESOURCES_MANAGE,
    SYSTEM_HEALTH,
    USERS_MANAGE,
    WAITING_ROOM,
)


@dataclass(frozen=True)
class PageSpec:
    key: str
    path: str  # relative to dashboard/app.py
    title: str
    icon: str
    permission: str | None  # None: every signed-in user
    section: str = "Workspaces"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("hub", "workspaces/hub.py", "Hub", ":material/home:", HUB),
    PageSpec(
        "scheduling", "workspaces/scheduling.py", "Scheduling", ":material/calendar_month:", SCHEDULE_READ
    ),
    PageSpec("waiting_room", "workspaces/waiting_room.py", "Waiting room", ":material/chair:", WAITING_ROOM),
    PageSpec(
        "device_inbox", "workspaces/device_inbox.py", "Device inbox", ":material/biotech:", DEVICE_INBOX
    ),
    PageSpec("records", "workspaces/records.py", "Patient record", ":material/pets:", RECORDS_READ),
    PageSpec("client_card", "workspaces/client_card.py", "Client card", ":material/person:", CLIENTS_READ),
    PageSpec("billing", "workspaces/billing.py", "Billing", ":material/receipt_long:", BILLING_READ),
    PageSpec(
        "franchise_dashboard",
        "workspaces/franchise_dashboard.py",
        "Franchise dashboard",
        ":material/insights:",
        DASHBOARD_FRANCHISE,
        section="Dashboards",
    ),
    PageSpec(
        "practice_dashboard",
        "workspaces/practice_dashboard.py",
        "Practice dashboard",
        ":material/monitoring:",
        DASHBOARD_PRACTICE,
        section="Dashboards",
    ),
    PageSpec(
        "practice_settings",
        "workspaces/practice_settings.py",
        "Practice settings",
        ":material/settings:",
        PRACTICE_SETTINGS,
        section="Practice",
    ),
    PageSpec(
        "integration",
        "workspaces/integration.py",
        "Animana integration",
        ":material/sync_alt:",
        INTEGRATION_MANAGE,
        section="Practice",
    ),
    PageSpec(
        "conflicts",
        "workspaces/conflicts.py",
        "Conflicts with Animana",
        ":material/call_split:",
        INTEGRATION_MANAGE,
        section="Practice",
    ),
    PageSpec("account", "workspaces/account.py", "My account", ":material/person:", None, section="Account"),
    PageSpec(
        "franchise_resources",
        "workspaces/franchise_resources.py",
        "Shared resources",
        ":material/inventory_2:",
        SHARED_RESOURCES_MANAGE,
        section="Practice",
    ),
    PageSpec(
        "practice_overrides",
        "workspaces/practice_overrides.py",
        "Practice overrides",
        ":material/tune:",
        PRACTICE_OVERRIDES,
        section="Practice",
    ),
    PageSpec(
        "merge",
        "workspaces/merge.py",
        "Merge duplicates",
        ":material/merge:",
        CLIENTS_MERGE,
        section="Practice",
    ),
    PageSpec(
        "client_register",
        "workspaces/client_register.py",
        "Register client",
        ":material/person_add:",
        CLIENTS_WRITE,
    ),
    PageSpec(
        "patient_register",
        "workspaces/patient_register.py",
        "Register patient",
        ":material/add_circle:",
        CLIENTS_WRITE,
    ),
    PageSpec(
        "referrals", "workspaces/referrals.py", "Referrals", ":material/forward_to_inbox:", RECORDS_READ
    ),
    PageSpec(
        "users", "workspaces/users.py", "Users", ":material/group:", USERS_MANAGE, section="Administration"
    ),
    PageSpec(
        "audit",
        "workspaces/audit.py",
        "Audit trail",
        ":material/fact_check:",
        AUDIT_READ,
        section="Administration",
    ),
    PageSpec(
        "system_health",
        "workspaces/system_health.py",
        "System health",
        ":material/monitor_heart:",
        SYSTEM_HEALTH,
        section="Administration",
    ),
    PageSpec(
        "messages", "workspaces/messages.py", "Messages", ":material/mail:", CLIENTS_READ, section="Practice"
    ),
)
SIGN_IN = PageSpec("sign_in", "workspaces/sign_in.py", "Sign in", ":material/login:", None)

# Search-hit kind -> page key that opens it (the first one the user may open wins).
OPENS: dict[str, tuple[str, ...]] = {
    "patient": ("records", "hub"),
    "client": ("client_card", "records", "scheduling"),
    "appointment": ("scheduling",),
    "invoice": ("billing",),
}


def pages_for(granted: frozenset[str]) -> list[PageSpec]:
    """The pages these permissions open (the permissions at one practice, or at all of the chosen ones)."""
    return [p for p in PAGES if p.permission is None or p.permission in granted]


def page(key: str) -> PageSpec:
    return next(p for p in PAGES if p.key == key)


def page_opening(kind: str, granted: frozenset[str]) -> PageSpec | None:
    available = {p.key: p for p in pages_for(granted)}
    return next((available[k] for k in OPENS.get(kind, ()) if k in available), None)
