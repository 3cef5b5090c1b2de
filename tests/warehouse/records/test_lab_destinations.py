"""Lab destinations against real PostgreSQL under RLS: the practice manager adds a lab (each field checked, the
refusal named at its field, nothing written), the order form offers it, switching it off takes it off the order
form (the row stays, audited), and another practice's lab is out of reach. The tests list's parser as
properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import text

from warehouse.records import lab_destinations, lab_orders
from warehouse.records.errors import RecordsError
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

Choice = lab_orders.TestChoice  # by another name: pytest would take a "Test..." class for tests
MANAGER = frozenset({"practice_manager"})
GOOD = {"name": "IDEXX Hoofddorp", "host": "lab.idexx.example.nl", "port": 2575, "message_type": "ORM^O01"}


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "  "}, "name", "Name the lab"),
        ({"name": "lab"}, "name", "a lab named Lab already"),  # the factories' lab, whatever the case
        ({"host": ""}, "host", "host name or address"),
        ({"host": "lab idexx.nl"}, "host", "is not a host name"),
        ({"host": "-lab.nl"}, "host", "is not a host name"),
        ({"port": 0}, "port", "1 to 65535"),
        ({"port": 65536}, "port", "1 to 65535"),
        ({"message_type": "ORU^R01"}, "message_type", r"one of ORM\^O01, OML\^O21"),
        ({"ack_timeout_seconds": 0}, "ack_timeout_seconds", "1 to 300 seconds"),
        ({"receiving_facility": "x" * 65}, "receiving_facility", "At most 64"),
        (
            {"tests": [Choice("CBC", "Haematology"), Choice("cbc", "Bloedbeeld")]},
            "tests",
            "listed twice",
        ),
    ],
)
def test_a_refused_field_is_named_and_nothing_is_written(ws_db, change, field, message):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        with pytest.raises(RecordsError, match=message) as refused:
            lab_destinations.add_destination(
                session, Actor.at(a1.user_id, a1.practice_id, MANAGER), practice_id=a1.practice_id,
                **{**GOOD, **change},
            )  # fmt: skip
        assert refused.value.field == field
        assert [d.name for d in lab_destinations.practice_destinations(session, a1.practice_id)] == ["Lab"]


def test_the_manager_adds_a_lab_the_order_form_offers_and_switches_it_off(ws_db):
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    manager = Actor.at(a1.user_id, a1.practice_id, MANAGER)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        added = lab_destinations.add_destination(
            session, manager, practice_id=a1.practice_id, **{**GOOD, "host": " 10.0.0.7 "},
            receiving_application=" IDEXX ", receiving_facility="", ack_timeout_seconds=30,
            tests=lab_destinations.parse_tests("T4 Total T4\n\nCBC  Haematology \nSDMA"),
        )  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        [listed] = [
            d for d in lab_destinations.practice_destinations(session, a1.practice_id) if d.id == added.id
        ]
        assert (listed.address, listed.receiving_application, listed.receiving_facility) == ("10.0.0.7:2575",
                                                                                                "IDEXX", None)  # fmt: skip
        assert listed.tests == (Choice("T4", "Total T4"), Choice("CBC", "Haematology"),
                                Choice("SDMA", "SDMA"))  # fmt: skip
        assert listed.ack_timeout_seconds == 30 and listed.active
        offered = {d.name: d for d in lab_orders.destinations(session, a1.practice_id)}
        assert [t.label for t in offered["IDEXX Hoofddorp"].tests][0] == "Total T4 (T4)"
        lab_destinations.switch_off_destination(session, manager, practice_id=a1.practice_id,
                                                destination_id=added.id)  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        assert "IDEXX Hoofddorp" not in {d.name for d in lab_orders.destinations(session, a1.practice_id)}
        [listed] = [
            d for d in lab_destinations.practice_destinations(session, a1.practice_id) if d.id == added.id
        ]
        assert not listed.active
        assert lab_destinations.practice_destinations(session, a1.practice_id)[-1].id == added.id  # off: last
        with pytest.raises(RecordsError, match="switched off already"):
            lab_destinations.switch_off_destination(session, manager, practice_id=a1.practice_id,
                                                    destination_id=added.id)  # fmt: skip
        audited = session.execute(text("SELECT action FROM audit_log WHERE entity = 'lab_destination' "
                                       "AND :d = ANY(entity_ids) ORDER BY seq"), {"d": added.id}).scalars().all()  # fmt: skip
        assert audited == ["insert", "update"]
        with pytest.raises(NotPermitted):  # a vet orders from the labs; setting them up is the manager's
            lab_destinations.add_destination(
                session, Actor.at(a1.user_id, a1.practice_id, {"veterinarian"}), practice_id=a1.practice_id,
                **{**GOOD, "name": "Ander lab"},
            )  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "b1")) as session:  # another franchise's practice: a1's lab is not there
        assert added.id not in {d.id for d in lab_destinations.practice_destinations(session, b1.practice_id)}
        with pytest.raises(RecordsError, match="Choose a lab of this practice"):
            lab_destinations.switch_off_destination(session, Actor.at(b1.user_id, b1.practice_id, MANAGER),
                                                    practice_id=b1.practice_id, destination_id=added.id)  # fmt: skip


_codes = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=20)
_names = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"), include_characters="\t"), max_size=60
)


@given(st.lists(st.tuples(_codes, _names), max_size=8, unique_by=lambda t: t[0].casefold()))
def test_parsed_tests_are_the_lines_code_then_name(entries):
    lines = [f"{code} {name}" for code, name in entries]
    assert lab_destinations.parse_tests("\n".join(lines)) == tuple(
        Choice(code, " ".join(name.split()) or code) for code, name in entries
    )


@given(_codes, _names, st.integers(min_value=0, max_value=5))
def test_a_code_listed_twice_is_refused_at_its_line(code, name, blank_lines):
    text_ = f"{code} {name}\n" + "\n" * blank_lines + f"{code.upper()} again"
    assume(code.upper().casefold() == code.casefold())  # a few letters (ß) change under upper(): another code
    with pytest.raises(RecordsError, match=f"Line {2 + blank_lines}: .* is listed already") as refused:
        lab_destinations.parse_tests(text_)
    assert refused.value.field == "tests"


def test_a_code_too_long_for_the_order_is_refused_at_its_line():
    with pytest.raises(RecordsError, match="Line 2: a test code is at most 64 characters"):
        lab_destinations.parse_tests("CBC Haematology\n" + "X" * (lab_destinations.TEST_CODE_MAX + 1))
