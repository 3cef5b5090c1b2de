"""Prescriptions: the franchise's medicines, the dispensing-category rules (a typed name is never less
restricted than a listed medicine of that name; UDA and UDD by a veterinarian only), the species warning (the
cascade), and the prescription itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from warehouse.kernel.practice_time import practice_today
from warehouse.records.consults import visit_of_the_day
from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text, require_patient
from warehouse.schema.billing import Product
from warehouse.schema.clinical import DISPENSING_CATEGORIES, Prescription
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import PRESCRIBE_VET_ONLY, RECORDS_WRITE, Actor, require

# Least to most restricted (the order of ``DISPENSING_CATEGORIES``): free sale, pharmacy/licensed retail, on a
# veterinarian's prescription, administered by the veterinarian. UDA and UDD are prescription-only veterinary
# medicines (Diergeneesmiddelenbesluit; EU 2019/6 art. 105): only a veterinarian may prescribe them.
CATEGORY_RANK = {category: rank for rank, category in enumerate(DISPENSING_CATEGORIES)}
VET_ONLY_CATEGORIES = frozenset({"UDA", "UDD"})


@dataclass(frozen=True)
class Medicine:
    franchise_id: int
    product_id: int
    code: str
    name: str
    dispensing_category: str | None
    species: tuple[str, ...] = ()  # registered for these species; empty: not recorded

    @property
    def label(self) -> str:
        return f"{self.name} ({self.dispensing_category or 'no category'})"


def _medicine_query(practice_id: int) -> Select:
    franchise_id = select(Tenant.franchise_id).where(Tenant.id == practice_id).scalar_subquery()
    return select(
        Product.franchise_id,
        Product.id,
        Product.code,
        Product.name,
        Product.dispensing_category,
        Product.species,
    ).where(Product.franchise_id == franchise_id, Product.kind == "medicine")


def _medicine(row: Row) -> Medicine:
    return Medicine(
        row.franchise_id, row.id, row.code, row.name, row.dispensing_category, tuple(row.species or ())
    )


def medicines(session: Session, practice_id: int) -> list[Medicine]:
    """The franchise's active medicines, the list a prescription is chosen from."""
    return [_medicine(r) for r in session.execute(_medicine_query(practice_id).where(Product.active)
                                                  .order_by(Product.name))]  # fmt: skip


def medicines_named(session: Session, practice_id: int, name: str) -> list[Medicine]:
    """The franchise's medicines (inactive ones too: a product taken off the list keeps its category) whose name
    is ``name``, ignoring case and surrounding spaces — what a typed name is checked against."""
    wanted = " ".join(name.split()).casefold()
    rows = session.execute(_medicine_query(practice_id))
    return [_medicine(r) for r in rows if " ".join(r.name.split()).casefold() == wanted]


def species_warning(medicine: Medicine, species: str) -> str | None:
    """The warning a prescription for ``species`` needs, when the medicine is registered for other species."""
    if not medicine.species or species in medicine.species:
        return None
    return (f"{medicine.name} is registered for {', '.join(medicine.species)}, not for {species}. "
            "Confirm that you prescribe it for this animal anyway (the cascade).")  # fmt: skip


def parse_quantity(raw: str | Decimal | int, field: str = "quantity") -> Decimal:
    try:
        quantity = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise RecordsError(field, "Enter a number, e.g. 2 or 0,5.") from None
    if not quantity.is_finite() or quantity <= 0:
        raise RecordsError(field, "The quantity must be more than 0.")
    if quantity >= Decimal(10_000_000) or quantity != quantity.quantize(Decimal("0.001")):
        raise RecordsError(field, "At most three decimals and less than 10,000,000.")
    return quantity


def prescribe(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, quantity: str | Decimal,
    product_id: int | None = None, product_name: str | None = None, dispensing_category: str | None = None,
    dosage_instructions: str | None = None, visit_id: int | None = None, confirm_other_species: bool = False,
) -> Prescription:  # fmt: skip
    """A prescription of a medicine from the price list (``product_id``) or of a typed name (``product_name``),
    never both. A listed medicine's dispensing category is the product's; a typed name is never less restricted
    than a medicine of that name on the list. UDA and UDD medicines are prescribed by a veterinarian only. A
    medicine registered for other species than the patient's needs ``confirm_other_species``."""
    require(actor, RECORDS_WRITE, practice_id)
    patient = require_patient(session, practice_id, patient_id)
    typed = optional_text(product_name)
    if product_id is not None and typed:
        raise RecordsError("product", "Choose a medicine from the list or type a name, not both.")
    if product_id is not None:
        listed = next((m for m in medicines(session, practice_id) if m.product_id == product_id), None)
        if listed is None:
            raise RecordsError("product", "This medicine is not in the practice's price list.")
        if listed.dispensing_category is not None:
            if dispensing_category not in (None, listed.dispensing_category):
                raise RecordsError("dispensing_category", f"{listed.name} is {listed.dispensing_category} in the "
                                   "price list; its category cannot be changed here.")  # fmt: skip
            dispensing_category = listed.dispensing_category
        name, matches = listed.name, [listed]
    elif typed:
        name, matches = typed, medicines_named(session, practice_id, typed)
    else:
        raise RecordsError("product", "Choose a medicine from the list or type its name.")
    if dispensing_category not in DISPENSING_CATEGORIES:
        raise RecordsError("dispensing_category", "Choose the dispensing category (VRIJ, URA, UDA or UDD).")
    strictest = max((m.dispensing_category for m in matches if m.dispensing_category), key=CATEGORY_RANK.get,
                    default=None)  # fmt: skip
    if strictest is not None and CATEGORY_RANK[dispensing_category] < CATEGORY_RANK[strictest]:
        raise RecordsError("dispensing_category", f"{name} is {strictest} in the price list: choose {strictest} "
                           "or stricter, or choose it from the list.")  # fmt: skip
    if dispensing_category in VET_ONLY_CATEGORIES:
        require(actor, PRESCRIBE_VET_ONLY, practice_id)
    warnings = [w for m in matches if (w := species_warning(m, patient.species))]
    if warnings and not confirm_other_species:
        raise RecordsError("confirm_other_species", warnings[0])
    amount = parse_quantity(quantity)
    if len(name) > 200:
        raise RecordsError("product", "A medicine's name is at most 200 characters.")
    if visit_id is None:
        visit_id = visit_of_the_day(session, practice_id, patient_id, practice_today(session, practice_id))
    prescription = Prescription(practice_id=practice_id, patient_id=patient_id, visit_id=visit_id,
                                franchise_id=matches[0].franchise_id if product_id is not None else None,
                                product_id=product_id, product_name=name, quantity=amount,
                                dosage_instructions=optional_text(dosage_instructions),
                                dispensing_category=dispensing_category, prescribed_by=actor.user_id,
                                other_species_confirmed=bool(warnings))  # fmt: skip
    session.add(prescription)
    session.flush()
    return prescription
