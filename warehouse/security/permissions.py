"""Permissions per role per module, always at one practice: "this permission at this practice".

A user holds roles per practice (a franchise-level role counts at every practice of its franchise), so a vet
at practice A who is a receptionist at practice B may write clinical records at A only. Services check the
permission at the practice they write (:func:`require`); pages offer what the roles at the practice chosen in
the switcher grant. The database (RLS) decides *which practices* a user sees at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
PRACTICE_SETTINGS = "practice.settings"  # the practice's invoice details and invoice number series
# Modes per module, the write-back outbox, the conflict queue (issue 15).
INTEGRATION_MANAGE = "integration.manage"
PRESCRIBE_VET_ONLY = (
    "records.prescribe_vet_only"  # UDA and UDD medicines (Diergeneesmiddelenbesluit): a vet only
)
# Shared resources (issue 16): the franchise's price list, appointment types, vaccine protocols and reminder
# templates by its admin; a practice's own values for them by the practice's manager.
SHARED_RESOURCES_MANAGE = "shared.manage"
PRACTICE_OVERRIDES = "practice.overrides"
CLIENTS_MERGE = "clients.merge"  # merge duplicate clients or patients, undo a merge the same day (issue 16)
CLIENTS_WRITE = "clients.write"  # register clients and patients, edit contact details (issue 16)
# Compliance and administration (issue 17).
PRIVACY_MANAGE = "privacy.manage"  # a client's GDPR export and erasure
REFERRALS_WRITE = "referrals.write"  # refer a patient to another practice, send findings back
USERS_MANAGE = (
    "users.manage"  # add users, roles at the practice, deactivate, unlock, reset 2-step, end sessions
)
AUDIT_READ = "audit.read"  # the audit viewer: who read or changed a record, and the chain's verification
SYSTEM_HEALTH = "system.health"  # the System health page: checks across every practice (issue 18)

# What a refusal says the user may not do.
DOING: dict[str, str] = {
    SCHEDULE_WRITE: "book or change appointments",
    CONSULT_WRITE: "run a consult",
    RECORDS_READ: "read the clinical record",
    RECORDS_WRITE: "write the clinical record",
    PRESCRIBE_VET_ONLY: "prescribe UDA and UDD medicines (a veterinarian only)",
    BILLING_WRITE: "write invoices or payments",
    DEVICE_INBOX: "match device results to patients",
    PRACTICE_SETTINGS: "change the practice's settings",
    INTEGRATION_MANAGE: "manage the Animana integration (modes, write-back, conflicts)",
    SHARED_RESOURCES_MANAGE: "change the franchise's price list, appointment types, protocols or templates",
    PRACTICE_OVERRIDES: "set the practice's own prices, durations, intervals or reminder texts",
    CLIENTS_MERGE: "merge duplicate clients or patients",
    CLIENTS_WRITE: "register clients and patients or change their details",
    PRIVACY_MANAGE: "export or erase a client's personal data",
    REFERRALS_WRITE: "refer patients to another practice or send findings back",
    USERS_MANAGE: "manage users and their roles",
    AUDIT_READ: "read the audit trail",
    SYSTEM_HEALTH: "see the system's health",
}

CLINICAL_WRITES = frozenset({CONSULT_WRITE, RECORDS_WRITE})
_FRONT_DESK = {HUB, SCHEDULE_READ, WAITING_ROOM, SCHEDULE_WRITE, BILLING_READ, BILLING_WRITE, CLIENTS_READ}
_CLINICAL = _FRONT_DESK | {RECORDS_READ, CONSULT_WRITE, RECORDS_WRITE, DEVICE_INBOX}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "franchise_admin": frozenset(
        _FRONT_DESK
        | {RECORDS_READ, DASHBOARD_FRANCHISE, DASHBOARD_PRACTICE, PRACTICE_SETTINGS, INTEGRATION_MANAGE}
        | {SHARED_RESOURCES_MANAGE, USERS_MANAGE, AUDIT_READ}
        | {SYSTEM_HEALTH}
    ),
    "franchise_manager": frozenset(_FRONT_DESK | {RECORDS_READ, DASHBOARD_FRANCHISE, DASHBOARD_PRACTICE}),
    "practice_manager": frozenset(
        _FRONT_DESK
        | {RECORDS_READ, DASHBOARD_PRACTICE, DEVICE_INBOX, PRACTICE_SETTINGS, INTEGRATION_MANAGE}
        | {PRACTICE_OVERRIDES, CLIENTS_WRITE, CLIENTS_MERGE}
        | {PRIVACY_MANAGE, REFERRALS_WRITE, USERS_MANAGE, AUDIT_READ}
    ),
    # Merging moves a client's or an animal's whole history: the practice manager and the vets.
    "veterinarian": frozenset(
        _CLINICAL | {PRESCRIBE_VET_ONLY, CLIENTS_WRITE, CLIENTS_MERGE, REFERRALS_WRITE}
    ),
    "nurse": frozenset(_CLINICAL | {CLIENTS_WRITE}),
    "receptionist": frozenset(_FRONT_DESK | {CLIENTS_WRITE}),
    "analyst": frozenset({HUB}),
}


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """What a set of roles held at one practice grants there."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def permissions_at(
    roles_by_practice: Mapping[int, frozenset[str]], practice_ids: Iterable[int]
) -> frozenset[str]:
    """The permissions held at *every* one of the practices (none for no practice): what a page working on all
    of them at once may offer."""
    sets = [permissions_for(roles_by_practice.get(p, frozenset())) for p in practice_ids]
    return frozenset.intersection(*sets) if sets else frozenset()


@dataclass(frozen=True)
class Actor:
    """Who acts: written to events and checked against the permissions of their roles at the practice an
    action writes. ``roles`` maps practice id -> the roles held there; a practice not in it grants nothing."""

    user_id: int | None
    roles: Mapping[int, frozenset[str]] = field(hash=False)
    # For messages only ("… at Dierenkliniek Amstel").
    practice_names: Mapping[int, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        # Before roles were per practice, an Actor took one set of roles for everywhere; refuse that loudly.
        if not isinstance(self.roles, Mapping):
            raise TypeError(
                "Actor roles are per practice ({practice_id: roles}); use Actor.at(user, practice, roles)"
            )

    @classmethod
    def at(cls, user_id: int | None, practice_id: int, roles: Iterable[str]) -> Actor:
        """Someone with these roles at one practice and none elsewhere."""
        return cls(user_id, {practice_id: frozenset(roles)})

    def roles_at(self, practice_id: int) -> frozenset[str]:
        return self.roles.get(practice_id, frozenset())

    def may(self, permission: str, practice_id: int) -> bool:
        return permission in permissions_for(self.roles_at(practice_id))


class NotPermitted(PermissionError):
    """The signed-in user's roles at the practice do not include the permission an action needs."""


def require(actor: Actor, permission: str, practice_id: int) -> None:
    """Refuse (before anything is written) unless the actor's roles at ``practice_id`` grant ``permission``."""
    if actor.may(permission, practice_id):
        return
    where = actor.practice_names.get(practice_id) or f"practice {practice_id}"
    held = ", ".join(sorted(r.replace("_", " ") for r in actor.roles_at(practice_id))) or "no role"
    raise NotPermitted(f"At {where} you work as {held}, which may not {DOING.get(permission, permission)}.")
