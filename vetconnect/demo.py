"""The demo world: two franchises, five practices with departments, staff for every role, and the shared
resources a practice needs before its first appointment. Safe to run twice (existing codes are kept)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from warehouse.billing.vat import vat_rate_for
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.records.reminders import ReminderRun, generate_vaccination_reminders
from warehouse.scheduling.rosters import (
    STANDARD_WEEK,
    WeeklyShift,
    agenda_spans,
    create_roster,
    roster_agenda,
)
from warehouse.schema.billing import Product
from warehouse.schema.clinical import ReminderTemplate, VaccineProtocol
from warehouse.schema.scheduling import AppointmentType, Resource
from warehouse.schema.tenancy import AppUser, Membership, Tenant
from warehouse.security.accounts import add_user
from warehouse.tenants.admin import add_department, add_franchise, add_practice

DEMO_PASSWORD = "Kliniek-Demo-2026"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

FRANCHISES = [
    ("dierenzorg", "DierenZorg Nederland"),
    ("vetplus", "VetPlus Klinieken"),
]
PRACTICES = [
    # franchise, code, name, city, departments
    ("dierenzorg", "dz-amstel", "Dierenkliniek Amstel", "Amsterdam", [("gezelschap", "Gezelschapsdieren"), ("spoed", "Spoedzorg")]),
    ("dierenzorg", "dz-utrecht", "Dierenartsenpraktijk Domstad", "Utrecht", [("gezelschap", "Gezelschapsdieren")]),
    ("dierenzorg", "dz-haarlem", "Dierenkliniek Spaarne", "Haarlem", [("gezelschap", "Gezelschapsdieren"), ("paard", "Paardenpraktijk")]),
    ("vetplus", "vp-eindhoven", "VetPlus Eindhoven", "Eindhoven", [("gezelschap", "Gezelschapsdieren")]),
    ("vetplus", "vp-zwolle", "VetPlus Zwolle", "Zwolle", [("gezelschap", "Gezelschapsdieren"), ("exoten", "Exoten en vogels")]),
]  # fmt: skip
# One account per role; username → (full name, role, tenant codes the role is held at).
ACCOUNTS = {
    "admin": ("Anouk de Vries", "franchise_admin", ["dierenzorg"]),
    "franchise": ("Bram Jansen", "franchise_manager", ["dierenzorg"]),
    "franchise2": ("Carla Smit", "franchise_manager", ["vetplus"]),
    "manager": ("Daan Bakker", "practice_manager", ["dz-amstel"]),
    "vet": ("Eva Visser", "veterinarian", ["dz-amstel", "dz-utrecht"]),
    "nurse": ("Fleur Mulder", "nurse", ["dz-amstel"]),
    "reception": ("Gijs de Boer", "receptionist", ["dz-amstel"]),
    "analyst": ("Hanna Meijer", "analyst", ["dierenzorg"]),
    "vet2": ("Iris Bos", "veterinarian", ["vp-eindhoven"]),
}
APPOINTMENT_TYPES = [
    # code, name, minutes, colour, species (None = all)
    ("consult", "Consult", 15, "#4C78A8", None),
    ("vacc", "Vaccinatie", 15, "#54A24B", None),
    ("checkup", "Gezondheidscheck", 20, "#72B7B2", None),
    ("followup", "Controle", 10, "#EECA3B", None),
    ("surgery", "Operatie", 60, "#E45756", None),
    ("dental", "Gebitsbehandeling", 45, "#FF9DA6", ["dog", "cat"]),
    ("castration", "Castratie kat", 30, "#B279A2", ["cat"]),
    ("euthanasia", "Euthanasie", 30, "#9D755D", None),
]
PRODUCTS = [
    ("C-CONS", "Consult", "service", 4500, None),
    ("C-CTRL", "Controleconsult", "service", 2500, None),
    ("V-CHP", "Vaccinatie hond (cocktail)", "service", 5200, None),
    ("V-KAT", "Vaccinatie kat (cocktail)", "service", 4800, None),
    ("M-MELOX", "Meloxicam 1,5 mg/ml 10 ml", "medicine", 1350, "UDA"),
    ("M-AMOX", "Amoxicilline 250 mg (10 tabl.)", "medicine", 1600, "UDA"),
    ("M-MILB", "Milbemax ontworming kat", "medicine", 1150, "URA"),
    ("M-FRONT", "Frontline vlooienmiddel", "medicine", 1995, "VRIJ"),
    ("M-PENT", "Pentobarbital 200 mg/ml", "medicine", 3500, "UDD"),
    ("S-CAST", "Castratie kater", "service", 9500, None),
    ("L-BLOOD", "Bloedonderzoek uitgebreid", "lab", 8900, None),
    ("F-RC2K", "Royal Canin Renal 2 kg", "food", 3295, None),
]
VACCINE_PROTOCOLS = [
    ("dog-chp", "Hond: cocktail (CHP)", "dog", 365 * 3),
    ("dog-lepto", "Hond: leptospirose", "dog", 365),
    ("cat-core", "Kat: niesziekte/kattenziekte", "cat", 365),
    ("rabbit-myxo", "Konijn: myxomatose/RHD", "rabbit", 365),
]
REMINDER_TEMPLATES = [
    ("vacc-email", "email", "Tijd voor de vaccinatie van {patient}", "Beste {client}, de vaccinatie van {patient} is "
     "bijna verlopen. Maak online of telefonisch een afspraak.", 21),
    ("vacc-sms", "sms", "Vaccinatie {patient}", "{patient} moet binnenkort gevaccineerd worden. Bel {practice}.", 7),
    ("followup-email", "email", "Controle voor {patient}", "Beste {client}, graag zien we {patient} terug voor "
     "een controle.", 3),
]  # fmt: skip
STAFF_PER_PRACTICE = [("vet", "Dierenarts"), ("vet", "Dierenarts"), ("nurse", "Paraveterinair")]
ROOMS = ["Spreekkamer 1", "Spreekkamer 2", "OK", "Röntgen"]


@dataclass(frozen=True)
class DemoSummary:
    franchises: int
    practices: int
    accounts: dict[str, tuple[str, str, list[str]]]
    created: bool
    practice_codes: list[str]
    # The moment the demo world was first built: the simulator's "now", so the practices are at work that day.
    # Kept (it is the first franchise's creation time) so a rerun syncs the same world and finds nothing new.
    anchor: dt.datetime


def _ensure(session: Session, code: str, create: Callable[[], Tenant]) -> Tenant:
    found = tenant_id_by_code(session, code)
    return create() if found is None else session.get_one(Tenant, found)


def build_demo_world(session: Session, *, master_key: bytes, today: dt.date | None = None) -> DemoSummary:
    """Create whatever of the demo world is missing, in one system-session transaction."""
    today = today or dt.datetime.now(AMSTERDAM).date()  # the practices' day, not the server's (UTC)
    created = tenant_id_by_code(session, FRANCHISES[0][0]) is None
    franchises = {
        code: _ensure(session, code, lambda c=code, n=name: add_franchise(session, code=c, name=n))
        for code, name in FRANCHISES
    }
    practices: dict[str, Tenant] = {}
    for franchise_code, code, name, city, departments in PRACTICES:
        franchise = franchises[franchise_code]
        practice = _ensure(
            session,
            code,
            lambda f=franchise, c=code, n=name, ci=city: add_practice(
                session, franchise_id=f.id, code=c, name=n, city=ci, master_key=master_key
            ),
        )
        practices[code] = practice
        for dep_code, dep_name in departments:
            full_code = f"{code}-{dep_code}"
            _ensure(session, full_code, lambda p=practice, c=full_code, n=dep_name: add_department(
                session, practice_id=p.id, code=c, name=n))  # fmt: skip
    # Each demo practice mirrors a simulator practice (1001, 1002, ...); loaded after commit, see below.
    for number, practice in enumerate(practices.values()):
        if practice.animana_practice_id is None:
            practice.animana_practice_id = str(1001 + number)
        if practice.iban is None:  # what its invoices must carry (issuing refuses without it)
            account = f"{417164300 + number:010d}"
            check = 98 - int("".join(str(int(ch, 36)) for ch in f"ABNA{account}NL00")) % 97
            practice.address, practice.postcode = f"Dorpsstraat {10 + number}", f"{1011 + number}AB"
            practice.vat_number, practice.kvk_number = f"NL{859876543 + number}B01", f"{12345678 + number}"
            practice.iban = f"NL{check:02d}ABNA{account}"
        if practice.phone is None:  # what every message to an owner ends with (warehouse.messaging.render)
            practice.phone = f"0{20 + number}-{5550100 + number}"
            practice.booking_url = f"https://{practice.code}.demo.vetconnect.nl/afspraak"
    tenants = {**franchises, **practices}
    for username, (full_name, role, codes) in ACCOUNTS.items():
        if session.scalar(select(AppUser.id).where(AppUser.username == username)) is None:
            add_user(session, username=username, full_name=full_name, password=DEMO_PASSWORD,
                     memberships=[(tenants[c].id, role) for c in codes], email=f"{username}@demo.vetconnect.nl")  # fmt: skip
    if created:
        for franchise in franchises.values():
            _seed_franchise_resources(session, franchise.id)
        for practice in practices.values():
            _seed_practice_resources(session, practice, today)
    session.flush()
    session.refresh(franchises[FRANCHISES[0][0]], ["created_at"])
    anchor = franchises[FRANCHISES[0][0]].created_at.replace(microsecond=0)
    return DemoSummary(len(franchises), len(practices), ACCOUNTS, created, list(practices), anchor)


def _seed_franchise_resources(session: Session, franchise_id: int) -> None:
    for code, name, minutes, colour, species in APPOINTMENT_TYPES:
        session.add(AppointmentType(franchise_id=franchise_id, code=code, name=name, duration_minutes=minutes,
                                    colour=colour, species=species))  # fmt: skip
    for code, name, kind, price, category in PRODUCTS:
        session.add(Product(franchise_id=franchise_id, code=code, name=name, kind=kind, price_cents=price,
                            vat_rate_bp=vat_rate_for(kind), dispensing_category=category))  # fmt: skip
    for code, name, species, interval in VACCINE_PROTOCOLS:
        session.add(VaccineProtocol(franchise_id=franchise_id, code=code, name=name, species=species,
                                    booster_interval_days=interval))  # fmt: skip
    session.flush()
    # The items a vaccination with these protocols is billed as.
    for product_code, protocol_code in (("V-CHP", "dog-chp"), ("V-KAT", "cat-core")):
        product = session.scalar(
            select(Product).where(Product.franchise_id == franchise_id, Product.code == product_code)
        )
        product.vaccine_protocol_id = session.scalar(select(VaccineProtocol.id).where(
            VaccineProtocol.franchise_id == franchise_id, VaccineProtocol.code == protocol_code))  # fmt: skip
    for code, channel, subject, body, days in REMINDER_TEMPLATES:
        session.add(ReminderTemplate(franchise_id=franchise_id, code=code, channel=channel, subject=subject,
                                     body=body, days_before_due=days))  # fmt: skip


def _seed_practice_resources(session: Session, practice: Tenant, today: dt.date) -> None:
    """Staff and rooms as bookable resources, with weekday shifts 08:00–17:30 for the coming two weeks."""
    staff_users = session.scalars(
        select(AppUser)
        .join(Membership, Membership.user_id == AppUser.id)
        .where(Membership.tenant_id == practice.id, Membership.role.in_(("veterinarian", "nurse")))
        .order_by(AppUser.id)
    ).all()
    resources = [
        Resource(practice_id=practice.id, kind="staff", name=u.full_name, user_id=u.id) for u in staff_users
    ]
    resources += [
        Resource(practice_id=practice.id, kind="staff", name=f"{title} {i + 1}")
        for i, (_, title) in enumerate(STAFF_PER_PRACTICE[len(staff_users):])
    ]  # fmt: skip
    resources += [Resource(practice_id=practice.id, kind="room", name=room) for room in ROOMS]
    session.add_all(resources)
    session.flush()
    create_roster(
        session, practice_id=practice.id, resource_ids=[r.id for r in resources if r.kind == "staff"],
        week=[WeeklyShift(day, dt.time(8, 0), dt.time(17, 30)) for day in range(1, 6)],
        first_day=today, last_day=today + dt.timedelta(days=13),
    )  # fmt: skip


@dataclass(frozen=True)
class PracticeUpkeep:
    code: str
    shifts_created: int
    reminders: ReminderRun


def roster_and_remind(
    app_engine: Engine,
    admin_engine: Engine,
    codes: list[str],
    *,
    today: dt.date | None = None,
    open_day: dt.date | None = None,
) -> list[PracticeUpkeep]:
    """After the sync: Animana delivers neither rosters nor reminders. Each practice's synced staff and rooms
    get the standard week (weekdays 08:00–18:30, Saturday 09:00–13:00) over their agenda's span, so
    utilisation has shift minutes to divide by; and the vaccination reminders falling due are generated.
    `open_day` (the demo's first day) gets weekday hours even at a weekend, as the simulator keeps that day
    open. Idempotent (a rerun adds nothing)."""
    today = today or dt.datetime.now(AMSTERDAM).date()
    with system_session(admin_engine, reason="demo: practices to roster and remind") as session:
        found = {code: tenant_id_by_code(session, code) for code in codes}
    if missing := [code for code, practice_id in found.items() if practice_id is None]:
        raise LookupError(f"no demo practice with code(s) {missing}")
    practices = {code: practice_id for code, practice_id in found.items() if practice_id is not None}
    done = []
    for code, practice_id in practices.items():
        with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
            shifts = 0
            if (
                open_day is not None and open_day.isoweekday() > 5
            ):  # first, or Saturday's short shift blocks it
                weekday = STANDARD_WEEK[0]
                shifts += create_roster(
                    session, practice_id=practice_id, resource_ids=[s.resource_id for s in agenda_spans(session, practice_id)],
                    week=[WeeklyShift(open_day.isoweekday(), weekday.starts, weekday.ends)],
                    first_day=open_day, last_day=open_day,
                )  # fmt: skip
            shifts += roster_agenda(session, practice_id, STANDARD_WEEK)
            reminders = generate_vaccination_reminders(session, practice_id, today=today)
        done.append(PracticeUpkeep(code, shifts, reminders))
    return done


def analyze(admin_engine: Engine, tables: Sequence[str] = ()) -> None:
    """Give the planner statistics for what the demo just loaded. Autovacuum analyses a table only after its
    next nap, so the marts' refresh right after the load was planned for near-empty tables: nested loops over
    ~30k visits x 35k appointments per practice, minutes per statement instead of 0.4 s. The application role
    may not ANALYZE; the admin engine may. `tables`: only those (what a later step wrote), else every table."""
    with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not tables:
            conn.execute(text("ANALYZE"))
        for table in tables:
            conn.execute(text(f"ANALYZE {conn.dialect.identifier_preparer.quote(table)}"))  # our table names
