"""Bad records become RejectedRecords with a reason, in stream order, and the valid records around them
still come through. The bad payloads travel over real HTTP (injected into the simulator)."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.animana import RESOURCE_MODELS, AnimanaRecord, RejectedRecord, Tombstone
from connectors.animana.parsing import as_wire, parse_page, parse_record, parse_wire_page
from connectors.animana.resources.products import Product

PRACTICE = 1003  # this module's practice on the shared simulator: it only ever receives injections

# Values that break each field for certain (wrong type, out of the enum, broken format or cross-field rule).
BAD: dict[str, dict[str, list]] = {
    "*": {
        "id": ["7", 0, -3, 1.5, True, None],
        "updated_at": [1700000000, "gisteren", "2024-01-01T00:00:00", None],
        "deleted": ["no", 0],
    },
    "relations": {
        "last_name": ["", None, 42],
        "postcode": ["12345", "AB 1234", 3581],
        "email": ["geen-at", 5],
        "iban": ["NL00INGB0000000001", "12"],
        "active": ["ja", 1, None],
    },
    "animals": {
        "relation_ids": [[], "1", [0], None, ["1"]],
        "gender": ["m", None],
        "chip_number": ["123", 528123456789012, "52812345678901X"],
        "deceased": ["nee", 0],
        "date_of_birth": ["31-12-2020", 20200101],
        "species": ["Hond!", None],
    },
    "agenda": {
        "status": ["weg", None],
        "start": ["morgen", None],
        "end": ["2000-01-01T00:00:00+00:00"],
        "resource_type": ["vet"],
        "animal_id": ["7", None],
        "booked_at": [None, 0],
    },
    "invoices": {
        "total_cents": [-1, "100", 1.5],
        "lines": [[], None, "x", [{"quantity": 1}]],
        "vat_cents": ["0", None],
        "number": ["", None],
    },
    "labresults": {"value": ["hoog", None, "NaN"], "flag": ["X"], "reference_low": [1e9], "test_code": [""]},
    "products": {
        "category": ["laboratorium", "Lab", None],
        "species": ["horse", ["Paard"], ["dog", ""], [1], [None], {"horse": True}, [["dog"]]],
        "price_cents": [-1, "98.00", 98.5],
        "vat_rate": [6, "21", 21.0],
        "code": ["", None],
        "active": ["ja", 1, None],
    },
    "payments": {"method": ["bitcoin", None], "amount_cents": ["10.00", 10.5], "invoice_id": [None, "1"]},
    "consults": {
        "soap": [None, "tekst", {"subjective": 1}],
        "diagnoses": [None, [{"venom_code": "x"}]],
        "weight_kg": [-1.0, "12 kg"],
        "temperature_c": [99.0],
    },
}
# Required fields whose absence must be caught (id and updated_at are filled in by the simulator's inject).
REQUIRED = {
    resource: [
        name for name, f in model.model_fields.items() if f.is_required() and name not in ("id", "updated_at")
    ]
    for resource, model in RESOURCE_MODELS.items()
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def samples(sim, client_module):
    return {
        r: next(
            i for i in client_module.iter_records(PRACTICE, r) if isinstance(i, AnimanaRecord)
        ).model_dump(mode="json")
        for r in BAD
        if r != "*"
    }


@pytest.fixture(scope="module")
def client_module(sim):
    from tests.connectors.animana.animana_support import make_client

    with make_client(sim) as c:
        yield c


@st.composite
def corruption(draw):
    resource = draw(st.sampled_from(sorted(r for r in BAD if r != "*")))
    fields = {**BAD["*"], **BAD[resource]}
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(fields)))
        return resource, ("set", name, draw(st.sampled_from(fields[name])))
    if draw(st.booleans()):
        return resource, ("drop", draw(st.sampled_from(REQUIRED[resource])), None)
    return resource, ("replace", None, draw(st.sampled_from([42, "record", [1, 2], None, True])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    case=corruption(),
    junk=st.dictionaries(st.from_regex(r"x_[a-z]{1,6}", fullmatch=True), json_values, max_size=2),
)
def test_bad_records_are_rejected_and_the_stream_goes_on(sim, client_module, samples, case, junk):
    resource, (action, field, value) = case
    valid = {k: v for k, v in samples[resource].items() if k not in ("id", "updated_at")}
    # Unknown extra fields are ignored, so valid-with-junk must still be valid.
    around = [{**copy.deepcopy(valid), **junk}, copy.deepcopy(valid)]
    if action == "set":
        bad = copy.deepcopy(valid)
        bad[field] = value
    elif action == "drop":
        bad = copy.deepcopy(valid)
        bad.pop(field)
    else:
        bad = value
    injected = sim.inject(PRACTICE, resource, [around[0], bad, around[1]])

    items = list(client_module.iter_records(PRACTICE, resource, updated_since=injected["high_water_before"]))

    assert len(items) == 3
    first, rejected, last = items
    assert isinstance(first, AnimanaRecord) and isinstance(last, AnimanaRecord)
    assert first.id == injected["ids"][0] and last.id == injected["ids"][2]
    assert isinstance(rejected, RejectedRecord), (field, value, rejected)
    assert rejected.reason and rejected.resource == resource and rejected.practice_id == PRACTICE
    if isinstance(bad, dict):
        assert isinstance(rejected.raw, dict)
        assert {k: rejected.raw[k] for k in bad} == bad  # stored as received, for the quarantine table
        if field not in (None, "id", "updated_at", "deleted"):
            assert field.split(".")[0] in rejected.reason
    else:
        assert rejected.raw == json.dumps(bad)


@settings(max_examples=200, deadline=None)
@given(resource=st.sampled_from(sorted(RESOURCE_MODELS)), raw=json_values)
def test_parse_record_never_raises(resource, raw):
    result = parse_record(1, resource, raw)
    assert isinstance(result, AnimanaRecord | Tombstone | RejectedRecord)
    if isinstance(result, RejectedRecord):
        assert result.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=corruption(), field_value=st.tuples(st.text(max_size=12), json_values), corrupt=st.integers(0, 2))
def test_a_page_validated_from_bytes_accepts_exactly_what_record_by_record_parsing_accepts(
    samples, case, field_value, corrupt
):
    """The client's fast paths (`parse_page`, and `parse_wire_page` for the sync, the whole page from its bytes)
    must never let through a record that `parse_record` would reject or turn into a tombstone; when they accept,
    the records are the same (the wire records have the models' fields)."""
    resource, (action, field, value) = case
    valid = {**samples[resource], "id": 7}
    record = copy.deepcopy(valid)
    if corrupt == 1 and action == "set":
        record[field] = value
    elif corrupt == 1 and action == "drop":
        record.pop(field)
    elif corrupt == 2:  # any JSON value in a known or unknown field
        name = field_value[0] if field_value[0] in valid or len(field_value[0]) % 2 else sorted(valid)[0]
        record[name] = field_value[1]
    page = json.dumps({"data": [valid, record], "next_cursor": "c2"}).encode()

    one_by_one = [parse_record(PRACTICE, resource, raw) for raw in json.loads(page)["data"]]
    fast = parse_page(resource, page)
    wire = parse_wire_page(resource, page)

    if all(type(item) is RESOURCE_MODELS[resource] for item in one_by_one):
        assert fast == (one_by_one, "c2")
        assert wire == ([as_wire(item) for item in one_by_one], "c2")
    else:
        assert fast is None and wire is None


PRODUCT = {
    "id": 7,
    "updated_at": "2026-11-02T12:00:00Z",
    "code": "V007",
    "name": "Equilis Prequenza Te",
    "category": "vaccine",
    "price_cents": 4150,
    "vat_rate": 21,
    "dispensing_category": "UDD",
    "active": True,
}
ABSENT = object()


@settings(max_examples=300, deadline=None)
@given(
    category=st.sampled_from(["service", "lab", "vaccine", "medication", "food", "other", "laboratorium"]),
    species=st.one_of(
        st.just(ABSENT),
        st.lists(st.sampled_from(["horse", "dog", "guinea_pig", "alpaca"]), max_size=4),
        st.lists(st.text(alphabet="abcXY_ -1\n", max_size=6), max_size=3),
        json_values,
    ),
)
def test_a_products_species_and_category_are_checked_strictly_and_alike_on_every_path(category, species):
    """An article's target species is optional (absent or null: not said); when given, a list of lower-case
    species names — never a bare string, a number or a capitalised name. The page fast paths accept exactly what
    record-by-record parsing accepts, with the same values."""
    raw = {**PRODUCT, "category": category}
    if species is not ABSENT:
        raw["species"] = species
    valid = category != "laboratorium" and (
        species is ABSENT or species is None
        or (type(species) is list and all(type(s) is str and re.fullmatch(r"[a-z_]+", s) for s in species))
    )  # fmt: skip
    page = json.dumps({"data": [raw], "next_cursor": None}).encode()

    item = parse_record(PRACTICE, "products", raw)

    assert isinstance(item, Product) == valid, item
    if valid:
        assert item.species == (None if species is ABSENT else species) and item.category == category
        assert parse_page("products", page) == ([item], None)
        assert parse_wire_page("products", page) == ([as_wire(item)], None)
    else:
        assert isinstance(item, RejectedRecord)
        assert parse_page("products", page) is None and parse_wire_page("products", page) is None


# Each resource's cross-field rules (`AnimanaRecord.check`): a record that breaks one, and part of the reason.
CROSS_FIELD = [
    ("agenda", lambda r: {"end": r["start"]}, "end must be after start"),
    ("relations", lambda r: {"iban": "NL00INGB0000000001"}, "iban: checksum does not match"),
    ("animals", lambda r: {"deceased": False, "deceased_on": "2020-01-02"}, "deceased_on is set"),
    (
        "animals",
        lambda r: {"deceased": True, "date_of_birth": "2020-01-02", "deceased_on": "2020-01-01"},
        "deceased_on is before date_of_birth",
    ),
    ("vaccinations", lambda r: {"due_on": r["given_on"]}, "due_on must be after given_on"),
    ("labresults", lambda r: {"reference_low": 5.0, "reference_high": 1.0}, "reference_low is above"),
    ("invoices", lambda r: {"total_cents": r["total_cents"] + 1}, "total_cents != total_excl_vat_cents"),
    ("invoices", lambda r: {"vat_cents": r["vat_cents"] + 1}, "vat_cents is not the sum of the lines"),
]


@pytest.mark.parametrize(("resource", "change", "reason"), CROSS_FIELD)
def test_cross_field_rules_hold_on_every_path(client_module, resource, change, reason):
    """Both page fast paths refuse a record that breaks a cross-field rule (so the page is read record by record),
    and `parse_record` rejects it with the rule's reason; the untouched record passes all three."""
    valid = next(
        i for i in client_module.iter_records(PRACTICE, resource) if isinstance(i, AnimanaRecord)
    ).model_dump(mode="json")
    broken = {**valid, **change(valid)}
    good_page = json.dumps({"data": [valid], "next_cursor": None}).encode()
    bad_page = json.dumps({"data": [valid, broken], "next_cursor": None}).encode()

    assert parse_page(resource, good_page) is not None and parse_wire_page(resource, good_page) is not None
    assert parse_page(resource, bad_page) is None and parse_wire_page(resource, bad_page) is None
    rejected = parse_record(PRACTICE, resource, broken)
    assert isinstance(rejected, RejectedRecord) and reason in rejected.reason
