"""The four shared resources a franchise defines once and its practices may adjust: which fields each has, how a
value typed in a form is read (Dutch money, VAT categories, durations, template placeholders) and how a stored
value reads back. The services (``shared_edits``) and the history (``shared_history``) are built on this table.

Form fields are named after the columns they fill, so an error's ``field`` is the column (``price_cents``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.numbers import NumberFormatError, parse_decimal

from warehouse.billing.vat import VAT_HIGH_BP, VAT_LOW_BP, VAT_ZERO_BP
from warehouse.kernel import formatting as fmt
from warehouse.kernel.errors import DomainError
from warehouse.schema.billing import PRODUCT_KINDS, Product, ProductPriceOverride
from warehouse.schema.clients import SPECIES
from warehouse.schema.clinical import (
    REMINDER_CHANNELS,
    ReminderTemplate,
    ReminderTemplateOverride,
    VaccineProtocol,
    VaccineProtocolOverride,
)
from warehouse.schema.scheduling import AppointmentType, AppointmentTypeOverride


class SharedResourceError(DomainError):
    """A shared-resource edit the rules refuse; ``field`` names the form field (the column)."""


class SharedResourceInvalid(SharedResourceError):
    """Every field the rules refuse, with its message (``errors``); nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(field, message)
        self.errors = errors


# The Dutch VAT categories a price list item falls in (warehouse.billing.vat), as the form offers them.
VAT_CATEGORIES: dict[int, str] = {
    VAT_HIGH_BP: "21 % (high: services, food, goods)",
    VAT_LOW_BP: "9 % (low: veterinary medicines)",
    VAT_ZERO_BP: "0 % (exempt)",
}
# What a reminder may say about the reminder it sends: {client} "Beste {client}", {patient}, {practice} …
# (issue 18: {when} an appointment's date and time, the practice's {phone} and {booking_link})
PLACEHOLDERS = ("client", "patient", "practice", "due_date", "vaccine", "when", "phone", "booking_link")
MAX_PRICE_CENTS = 100_000_000  # € 1.000.000: far above any item, far below what a typo of digits makes
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
WHOLE = re.compile(r"-?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,9})")  # 1095 or 1.095 (a Dutch thousands dot)


def parse_price_cents(raw: object, field: str = "price_cents") -> int:
    """Euros as a Dutch user types them (``12,50``, ``€ 1.250``, ``1.234,56``) to cents.

    Read by Babel's Dutch number rules in strict mode, so a dot is a thousands separator: ``1.250`` is
    € 1.250,00, and ``12.50`` (an English decimal point) is refused with the readings it could have meant
    rather than guessed. (``billing.invoices.parse_amount`` takes ``1.250`` for € 1,25: harmless for a payment
    checked against its invoice, a thousandfold error on a price list.)"""
    text = str(raw if raw is not None else "").replace("€", "").strip()
    if not text:
        raise SharedResourceError(field, "Enter a price in euros, e.g. 12,50.")
    try:
        value = parse_decimal(text, locale=fmt.LOCALE, strict=True)
    except NumberFormatError as exc:
        hint = f" Did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise SharedResourceError(
            field, f"'{raw}' is not an amount in euros: write it the Dutch way, e.g. 12,50 or 1.250,00.{hint}"
        ) from None
    if not value.is_finite():  # Babel reads "INF" and "NaN" as numbers
        raise SharedResourceError(field, f"'{raw}' is not an amount in euros: write it e.g. 12,50.")
    if value < 0:
        raise SharedResourceError(field, "A price cannot be negative.")
    if value * 100 >= MAX_PRICE_CENTS:
        raise SharedResourceError(field, f"A price must be below {fmt.euros(MAX_PRICE_CENTS)}.")
    if value != value.quantize(Decimal("0.01")):
        raise SharedResourceError(field, "A price has at most two decimals (cents), e.g. 12,50.")
    return int(value * 100)


def parse_whole(raw: object, field: str, *, low: int, high: int, unit: str) -> int:
    text = str(raw if raw is not None else "").strip()
    if not WHOLE.fullmatch(text):
        raise SharedResourceError(field, f"Enter a whole number of {unit}.")
    value = int(text.replace(".", ""))
    if not low <= value <= high:
        raise SharedResourceError(field, f"Must be from {fmt.number(low)} to {fmt.number(high)} {unit}.")
    return value


def check_placeholders(template: str, field: str) -> str:
    """The template as given, if every ``{name}`` in it is one a reminder fills in (and the braces match)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise SharedResourceError(
            field, "A brace is not closed or opened: placeholders are written {client}, a brace itself {{ }}."
        ) from None
    known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{}" if not name else f"{{{name}}}"
            raise SharedResourceError(
                field, f"{shown} is not a placeholder a reminder fills in; use {known}."
            )
    return template


@dataclass(frozen=True)
class Field:
    """One form field of a shared resource: the column it fills, its label, how it is read and shown."""

    column: str
    label: str
    read: Callable[[object, str], Any]  # raw form value, field -> stored value (raises SharedResourceError)
    show: Callable[[Any], str]
    choices: tuple[Any, ...] = ()  # for a choice: the stored values offered
    long: bool = False  # a text area rather than a line

    def parse(self, raw: object) -> Any:
        return self.read(raw, self.column)


def _text(max_length: int, *, required: bool = True) -> Callable[[object, str], str]:
    def read(raw: object, field: str) -> str:
        value = " ".join(str(raw or "").split()) if max_length <= 200 else str(raw or "").strip()
        if required and not value:
            raise SharedResourceError(field, "Cannot be empty.")
        if len(value) > max_length:
            raise SharedResourceError(field, f"At most {max_length} characters ({len(value)} given).")
        return value

    return read


def _code(raw: object, field: str) -> str:
    value = str(raw or "").strip()
    if not CODE.fullmatch(value):
        raise SharedResourceError(
            field, "A code is 1 to 32 letters, digits, '.', '-' or '_', starting with a letter or digit."
        )
    return value


def _choice(choices: tuple[Any, ...], what: str) -> Callable[[object, str], Any]:
    def read(raw: object, field: str) -> Any:
        if raw not in choices:
            raise SharedResourceError(field, f"Choose {what} from the list.")
        return raw

    return read


def _colour(raw: object, field: str) -> str:
    value = str(raw or "").strip()
    if not COLOUR.fullmatch(value):
        raise SharedResourceError(field, "A colour is written #RRGGBB, e.g. #4C78A8.")
    return value.upper()


def _template(max_length: int) -> Callable[[object, str], str]:
    plain = _text(max_length)
    return lambda raw, field: check_placeholders(plain(raw, field), field)


def _flag(raw: object, field: str) -> bool:
    return bool(raw)


def _plain(value: Any) -> str:
    return fmt.EMPTY if value is None or value == "" else str(value)


def _yes_no(value: Any) -> str:
    return fmt.EMPTY if value is None else ("yes" if value else "no")


def _unit(unit: str) -> Callable[[Any], str]:
    return lambda value: fmt.EMPTY if value is None else f"{fmt.number(value)} {unit}"


def _vat(value: Any) -> str:
    return fmt.EMPTY if value is None else f"{fmt.number(value / 100)} %"


CODE_FIELD = Field("code", "Code", _code, _plain)
ACTIVE = Field("active", "Offered", _flag, _yes_no)
PRICE = Field("price_cents", "Price excl. VAT", parse_price_cents, fmt.euros)
DURATION = Field(
    "duration_minutes", "Duration",
    lambda raw, field: parse_whole(raw, field, low=5, high=480, unit="minutes"), _unit("min"),
)  # fmt: skip
COLOUR_FIELD = Field("colour", "Colour", _colour, _plain)
BOOSTER = Field(
    "booster_interval_days", "Booster interval",
    lambda raw, field: parse_whole(raw, field, low=1, high=3650, unit="days"), _unit("days"),
)  # fmt: skip
SUBJECT = Field("subject", "Subject", _template(200), _plain)
BODY = Field("body", "Text", _template(2000), _plain, long=True)
DAYS_BEFORE = Field(
    "days_before_due", "Sent before due",
    lambda raw, field: parse_whole(raw, field, low=0, high=365, unit="days"), _unit("days"),
)  # fmt: skip


@dataclass(frozen=True)
class SharedResource:
    """A franchise-level resource, its practice override table, and the fields of each."""

    key: str
    label: str  # the tab
    singular: str  # in messages: "price list item"
    item: type
    override: type
    item_fk: str  # the override's column naming the franchise item
    fields: tuple[Field, ...]  # what the franchise admin edits (besides switching the item off)
    overridable: tuple[Field, ...]  # what a practice may set its own value for

    def field(self, column: str) -> Field:
        return next(f for f in (*self.fields, *self.overridable, ACTIVE) if f.column == column)

    @property
    def has_active_override(self) -> bool:
        return any(f.column == "active" for f in self.overridable)


RESOURCES: dict[str, SharedResource] = {
    r.key: r
    for r in (
        SharedResource(
            "prices", "Price list", "price list item", Product, ProductPriceOverride, "product_id",
            (CODE_FIELD, Field("name", "Name", _text(200), _plain),
             Field("kind", "Kind", _choice(PRODUCT_KINDS, "a kind"), _plain, PRODUCT_KINDS), PRICE,
             Field("vat_rate_bp", "VAT category", _choice(tuple(VAT_CATEGORIES), "a VAT category"), _vat,
                   tuple(VAT_CATEGORIES))),
            (PRICE, ACTIVE),
        ),
        SharedResource(
            "appointment_types", "Appointment types", "appointment type", AppointmentType,
            AppointmentTypeOverride, "appointment_type_id",
            (CODE_FIELD, Field("name", "Name", _text(120), _plain), DURATION, COLOUR_FIELD,
             Field("requires_vet", "Needs a vet", _flag, _yes_no)),
            (DURATION, COLOUR_FIELD, ACTIVE),
        ),
        SharedResource(
            "vaccine_protocols", "Vaccine protocols", "vaccine protocol", VaccineProtocol,
            VaccineProtocolOverride, "protocol_id",
            (CODE_FIELD, Field("name", "Name", _text(120), _plain),
             Field("species", "Species", _choice(SPECIES, "a species"), _plain, SPECIES), BOOSTER),
            (BOOSTER, ACTIVE),
        ),
        SharedResource(
            "reminder_templates", "Reminder templates", "reminder template", ReminderTemplate,
            ReminderTemplateOverride, "template_id",
            (CODE_FIELD, Field("channel", "Channel", _choice(REMINDER_CHANNELS, "a channel"), _plain,
                               REMINDER_CHANNELS), SUBJECT, BODY, DAYS_BEFORE),
            (SUBJECT, BODY, DAYS_BEFORE),
        ),
    )
}  # fmt: skip
# The shared_resource_change table names of each resource, franchise level and practice level.
TABLES: dict[str, SharedResource] = {
    **{r.item.__tablename__: r for r in RESOURCES.values()},  # type: ignore[attr-defined]
    **{r.override.__tablename__: r for r in RESOURCES.values()},  # type: ignore[attr-defined]
}


def parse_fields(fields: tuple[Field, ...], values: dict[str, object]) -> dict[str, Any]:
    """Every field read from the form at once: the stored values, or ``SharedResourceInvalid`` with a message
    per refused field."""
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        try:
            parsed[f.column] = f.parse(values.get(f.column))
        except SharedResourceError as exc:
            errors[exc.field] = str(exc)
    if errors:
        raise SharedResourceInvalid(errors)
    return parsed
