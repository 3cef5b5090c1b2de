"""Properties of the weight parser (Dutch decimal comma) and the coded-list search (every word matches; any
piece of a term finds it; LIKE wildcards typed by the user match themselves)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.records import diagnoses, weights
from warehouse.records.errors import RecordsError
from warehouse.security.accounts import access_context_for_user

KG = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9999.999"), places=3)


@given(KG, st.sampled_from([",", "."]), st.sampled_from(["", " kg", "kg", " KG"]))
def test_a_weight_written_either_way_reads_back_exactly(kg, separator, unit):
    typed = f"{kg:f}".replace(".", separator) + unit
    assert weights.parse_weight_kg(typed) == kg


@given(st.text(max_size=20))
def test_any_input_is_a_positive_weight_of_at_most_three_decimals_or_a_field_error(typed):
    try:
        kg = weights.parse_weight_kg(typed)
    except RecordsError as exc:
        refused = exc.field
    else:
        refused = None
        assert kg > 0 and kg == kg.quantize(Decimal("0.001"))
    assert refused in (None, "weight")


@given(KG)
def test_the_dutch_text_of_a_weight_parses_back(kg):
    assert weights.parse_weight_kg(weights.kg_text(kg)) == kg


@pytest.fixture(scope="module")
def list_session(world_db):
    a1 = world_db.world.practices["a1"]
    with world_db.system() as session:
        context = access_context_for_user(session, a1.user_id)
    with world_db.as_app(context) as session:
        yield session, a1.practice_id, diagnoses.diagnosis_codes(session, a1.practice_id, limit=1000)


QUERY = st.text(alphabet=st.sampled_from("abcdeilnortsuy -%_\\VC0"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(QUERY)
def test_every_result_matches_every_word_of_the_query(list_session, query):
    session, practice_id, _ = list_session
    for choice in diagnoses.diagnosis_codes(session, practice_id, query=query, limit=1000):
        for word in diagnoses.search_words(query):
            assert (word.lower() in choice.term.lower() or choice.code.lower().startswith(word.lower())
                    or (choice.venom_id or "").startswith(word)), (query, choice)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_piece_of_a_term_finds_the_term(list_session, data):
    session, practice_id, everything = list_session
    entry = data.draw(st.sampled_from(everything))
    start = data.draw(st.integers(0, len(entry.term) - 1))
    piece = entry.term[start : data.draw(st.integers(start + 1, len(entry.term)))]
    if not piece.strip():
        return
    found = diagnoses.diagnosis_codes(session, practice_id, query=piece.upper(), limit=1000)
    assert entry.id in {c.id for c in found}
