"""The search's word index (migration 0402) against real PostgreSQL under RLS: it follows every write of the
record, ranks exact before prefix before typo, stops at the page size, and never crosses a practice."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from tests.conftest import MASTER_KEY
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.search.service import search


def _titles(results, kind):  # noqa: ANN001, ANN202
    return [h.title for h in results.group(kind)]


def _words(session, practice_id, kind):  # noqa: ANN001, ANN202
    return set(session.execute(
        text("SELECT word FROM search_word WHERE practice_id = :p AND kind = :k"), {"p": practice_id, "k": kind}
    ).scalars())  # fmt: skip


def test_the_index_follows_inserts_renames_and_deletes_made_by_the_app_role(ws_db):
    a1 = ws_db.world.practices["a1"]
    practice = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(practice) as session:
        client = Client(
            practice_id=a1.practice_id, last_name="Zwanenburg", first_name="Ilse", postcode="3512 JK"
        )
        session.add(client)
        session.flush()
        client_id = client.id
    with ws_db.as_app(practice) as session:
        assert [h.id for h in search(session, "Zwanenburg", master_key=MASTER_KEY).group("client")] == [
            client_id
        ]
        assert [h.id for h in search(session, "ilse", master_key=MASTER_KEY).group("client")] == [client_id]
        assert client_id in {h.id for h in search(session, "3512jk", master_key=MASTER_KEY).group("client")}
        session.get(Client, (a1.practice_id, client_id)).last_name = "Kraaijeveld"
    with ws_db.as_app(practice) as session:
        assert not search(session, "Zwanenburg", master_key=MASTER_KEY).group("client")
        assert [h.id for h in search(session, "Kraaijveld", master_key=MASTER_KEY).group("client")] == [
            client_id
        ]
        # The old name left the typo vocabulary with its last entry (an erased name must not linger there).
        assert "zwanenburg" not in _words(session, a1.practice_id, "client")
        session.get(Client, (a1.practice_id, client_id)).deleted_at = dt.datetime.now(dt.UTC)
    with ws_db.as_app(practice) as session:
        assert not search(session, "Kraaijeveld", master_key=MASTER_KEY).group("client")
        assert "kraaijeveld" not in _words(session, a1.practice_id, "client")
        invoice_number = session.execute(
            text("SELECT number FROM invoice WHERE practice_id = :p"), {"p": a1.practice_id}
        ).scalar_one()
        session.execute(text("DELETE FROM payment WHERE practice_id = :p"), {"p": a1.practice_id})
        session.execute(
            text("UPDATE invoice SET number = '2026-a1-7777' WHERE practice_id = :p"), {"p": a1.practice_id}
        )
    with ws_db.as_app(practice) as session:
        assert _titles(search(session, "2026-a1-77", master_key=MASTER_KEY), "invoice") == ["2026-a1-7777"]
        assert not search(session, invoice_number, master_key=MASTER_KEY).group("invoice")


def test_invoice_numbers_match_exactly_first_then_as_prefix_in_any_case(ws_db):
    a1 = ws_db.world.practices["a1"]
    practice = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(practice) as session:
        source = session.execute(
            text("SELECT client_id, issued_on FROM invoice WHERE practice_id = :p"), {"p": a1.practice_id}
        ).one()
        for number in ("F2026-0412", "F2026-04", "F2026-0401", "F2027-04"):
            session.execute(
                text(
                    "INSERT INTO invoice (practice_id, number, client_id, issued_on, status, total_excl_cents, "
                    "vat_cents, total_incl_cents) VALUES (:p, :n, :c, :d, 'issued', 100, 21, 121)"
                ),
                {"p": a1.practice_id, "n": number, "c": source.client_id, "d": source.issued_on},
            )
    with ws_db.as_app(practice) as session:
        found = search(session, "f2026-04", master_key=MASTER_KEY).group("invoice")
        # The exact number first, then the numbers it begins, in number order; other numbers not at all.
        assert [h.title for h in found] == ["F2026-04", "F2026-0401", "F2026-0412"]
        assert found[0].score > found[1].score


def test_exact_before_prefix_before_typo_and_a_common_name_stops_at_the_page(ws_db):
    a1 = ws_db.world.practices["a1"]
    practice = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(practice) as session:
        for name in ("Saartje", "Saar", "Sar", "Sarah"):
            session.add(Patient(practice_id=a1.practice_id, name=name, species="cat"))
    with ws_db.as_app(practice) as session:
        hits = search(session, "saar", master_key=MASTER_KEY).group("patient")
        assert [h.title for h in hits][:2] == ["Saar", "Saartje"]
        assert hits[0].score == 1.0 and hits[0].score > hits[1].score
        # A typo (a letter dropped inside) finds by similarity, ranked below anything that matches as typed.
        typo = search(session, "Sartje", master_key=MASTER_KEY).group("patient")
        assert [h.title for h in typo][0] == "Saartje"
        assert all(h.score < 0.9 for h in typo)
        session.add_all(
            Patient(practice_id=a1.practice_id, name=f"Max {n}", species="dog", date_of_birth=dt.date(2020, 1, 1))
            for n in range(30)
        )  # fmt: skip
    with ws_db.as_app(practice) as session:
        common = search(session, "max", master_key=MASTER_KEY, limit=8)
        assert len(common.group("patient")) == 8 and all(h.score == 1.0 for h in common.group("patient"))
        # Never a silent cut-off: the results say there are more, and a larger page holds the first one.
        assert common.more == {"patient"}
        wider = search(session, "max", master_key=MASTER_KEY, limits={"patient": 16})
        assert len(wider.group("patient")) == 16 and set(common.group("patient")) <= set(
            wider.group("patient")
        )
        everything = search(session, "max", master_key=MASTER_KEY, limits={"patient": 40})
        assert len(everything.group("patient")) == 30 and not everything.more


def test_the_index_never_answers_with_another_practice_or_franchise(ws_db):
    world = ws_db.world
    a1, a2, b1 = (world.practices[c] for c in ("a1", "a2", "b1"))
    with ws_db.as_app(AccessContext.for_practices([b1.practice_id], user_id=b1.user_id)) as session:
        patient = Patient(practice_id=b1.practice_id, name="Quirijntje", species="rabbit")
        session.add(patient)
        session.flush()
        session.add(ClientPatient(practice_id=b1.practice_id, client_id=b1.client_id, patient_id=patient.id))
    for context in (
        AccessContext.for_practices([a1.practice_id], user_id=a1.user_id),
        AccessContext.for_practices([a1.practice_id, a2.practice_id], user_id=world.franchise_manager_id),
    ):
        with ws_db.as_app(context) as session:
            for query in ("Quirijntje", "Quirijnt", "Qurijntje"):  # exact, prefix, typo
                assert not search(session, query, master_key=MASTER_KEY).hits, query
            # The common test names exist in every practice: only the context's practices answer.
            found = search(session, "Bello", master_key=MASTER_KEY)
            assert {h.practice_id for h in found.hits} <= set(context.practice_ids)
            assert {h.practice_id for h in found.group("patient")} == set(context.practice_ids)
            assert not session.execute(
                text("SELECT count(*) FROM search_term WHERE practice_id = :b"), {"b": b1.practice_id}
            ).scalar_one()
    with ws_db.as_app(AccessContext.for_practices([b1.practice_id], user_id=b1.user_id)) as session:
        assert _titles(search(session, "Qurijntje", master_key=MASTER_KEY), "patient") == ["Quirijntje"]


def test_the_warehouse_vocabulary_is_unreadable_and_answers_only_with_the_callers_words(ws_db):
    """search_vocabulary (0404) spans tenants: the application role cannot select it, and
    search_similar_words() returns only words one of the caller's practices has; an erased word leaves it."""
    world = ws_db.world
    a1, b1 = world.practices["a1"], world.practices["b1"]
    with ws_db.as_app(AccessContext.for_practices([b1.practice_id], user_id=b1.user_id)) as session:
        patient = Patient(practice_id=b1.practice_id, name="Wolkewietje", species="rabbit")
        session.add(patient)
        session.flush()
        patient_id = patient.id
    similar = text("SELECT word FROM search_similar_words('patient', :w, 10)")
    with ws_db.as_app(AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)) as session:
        session.execute(text("SELECT set_config('pg_trgm.word_similarity_threshold', '0.5', true)"))
        assert "wolkewietje" not in session.execute(similar, {"w": "wolkewitje"}).scalars().all()
        session.execute(text("SAVEPOINT denied"))
        with pytest.raises(ProgrammingError, match="permission denied"):
            session.execute(text("SELECT word FROM search_vocabulary"))
        session.execute(text("ROLLBACK TO SAVEPOINT denied"))
    b_only = AccessContext.for_practices([b1.practice_id], user_id=b1.user_id)
    with ws_db.as_app(b_only) as session:
        session.execute(text("SELECT set_config('pg_trgm.word_similarity_threshold', '0.5', true)"))
        assert session.execute(similar, {"w": "wolkewitje"}).scalars().all() == ["wolkewietje"]
        session.get(Patient, (b1.practice_id, patient_id)).deleted_at = dt.datetime.now(dt.UTC)
    with ws_db.system() as session:
        left = session.execute(text("SELECT count(*) FROM search_vocabulary WHERE word = 'wolkewietje'"))
        assert left.scalar_one() == 0


def test_a_bulk_insert_indexes_every_name_word_as_a_rebuild_does(ws_db):
    """One statement of many rows (what a sync batch is): every word of every live name is an entry, each
    practice word is in its vocabulary, and rebuilding the practice's index from the tables changes nothing."""
    a1 = ws_db.world.practices["a1"]
    names = [(f"Van der Berg-{i}", f"Anna Lies {i % 7}") for i in range(150)] + [("de  Vries", None)] * 3
    practice = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(practice) as session:
        ids = session.execute(
            text("INSERT INTO client (practice_id, last_name, first_name) "
                 "SELECT :p, l, f FROM unnest(CAST(:l AS text[]), CAST(:f AS text[])) AS n(l, f) RETURNING id"),
            {"p": a1.practice_id, "l": [n[0] for n in names], "f": [n[1] for n in names]},
        ).scalars().all()  # fmt: skip

    def words(last: str, first: str | None) -> set[str]:
        return {w for w in re.split(r"[^0-9a-z]+", f"{last} {first or ''}".lower()) if w}

    expected = {
        (word, client_id) for client_id, name in zip(ids, names, strict=True) for word in words(*name)
    }
    snapshot = text(
        "SELECT (SELECT array_agg(t ORDER BY t) FROM (SELECT kind, word, entity_id FROM search_term "
        "WHERE practice_id = :p) t), (SELECT array_agg(w ORDER BY w) FROM (SELECT kind, word FROM search_word "
        "WHERE practice_id = :p) w)"
    )
    with ws_db.system() as session:
        entries = set(session.execute(
            text("SELECT word, entity_id FROM search_term WHERE practice_id = :p AND kind = 'client' "
                 "AND entity_id = ANY(:ids)"), {"p": a1.practice_id, "ids": ids},
        ).tuples())  # fmt: skip
        vocabulary = set(
            session.execute(text("SELECT word FROM search_vocabulary WHERE kind = 'client'")).scalars()
        )
        maintained = session.execute(snapshot, {"p": a1.practice_id}).one()
        session.execute(text("SELECT search_reindex(:p)"), {"p": a1.practice_id})
        rebuilt = session.execute(snapshot, {"p": a1.practice_id}).one()
    assert entries == expected
    assert {word for word, _ in expected} <= _words_of(ws_db, a1.practice_id) and {
        "berg",
        "vries",
    } <= vocabulary
    assert maintained == rebuilt


# What one UPDATE statement may do to a client or a patient: rename, move, delete or bring back, or change a
# column the index does not read (most of what a sync or a settlement writes).
CLIENT_CHANGES = st.sampled_from(
    [("last_name", "Zwanenburg"), ("last_name", "de Vries"), ("first_name", "Ilse Marie"), ("first_name", None),
     ("postcode", "3512 JK"), ("postcode", "1011AB"), ("postcode", None), ("city", "Utrecht"), ("deleted", True),
     ("deleted", False)]
)  # fmt: skip
PATIENT_CHANGES = st.sampled_from(
    [
        ("name", "Bello"),
        ("name", "Kiki de Tweede"),
        ("colour", "zwart"),
        ("deleted", True),
        ("deleted", False),
    ]
)
UPDATE_CLIENTS = text(
    "UPDATE client c SET last_name = coalesce(s.change->>'last_name', c.last_name), "
    "first_name = CASE WHEN s.change ? 'first_name' THEN s.change->>'first_name' ELSE c.first_name END, "
    "postcode = CASE WHEN s.change ? 'postcode' THEN s.change->>'postcode' ELSE c.postcode END, "
    "city = coalesce(s.change->>'city', c.city), deleted_at = CASE WHEN NOT s.change ? 'deleted' THEN "
    "c.deleted_at WHEN (s.change->>'deleted')::boolean THEN now() END "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:changes AS jsonb[])) AS s(id, change) "
    "WHERE c.practice_id = :p AND c.id = s.id"
)
UPDATE_PATIENTS = text(
    "UPDATE patient a SET name = coalesce(s.change->>'name', a.name), colour = coalesce(s.change->>'colour', "
    "a.colour), deleted_at = CASE WHEN NOT s.change ? 'deleted' THEN a.deleted_at "
    "WHEN (s.change->>'deleted')::boolean THEN now() END "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:changes AS jsonb[])) AS s(id, change) "
    "WHERE a.practice_id = :p AND a.id = s.id"
)


def test_one_update_of_many_rows_leaves_the_index_a_rebuild_would_make(ws_db):
    """Property: whatever one UPDATE statement does to any mix of rows (renames, moves, deletions and returns,
    changes of columns the index does not read), the entries and the practice's words are those a rebuild from
    the tables makes — an old postcode included (before 0610 it stayed), and rows whose searched columns did not
    change (which the triggers skip) untouched."""
    a1 = ws_db.world.practices["a1"]
    practice = AccessContext.for_practices([a1.practice_id], user_id=a1.user_id)
    with ws_db.as_app(practice) as session:
        clients = session.execute(
            text("INSERT INTO client (practice_id, last_name, first_name, postcode) SELECT :p, 'Klant ' || i, "
                 "'Anna', '35' || lpad(i::text, 2, '0') || ' AB' FROM generate_series(1, 12) i RETURNING id"),
            {"p": a1.practice_id},
        ).scalars().all()  # fmt: skip
        patients = session.execute(
            text("INSERT INTO patient (practice_id, name, species) SELECT :p, 'Dier ' || i, 'dog' "
                 "FROM generate_series(1, 12) i RETURNING id"),
            {"p": a1.practice_id},
        ).scalars().all()  # fmt: skip
    snapshot = text(
        "SELECT (SELECT array_agg(t ORDER BY t) FROM (SELECT kind, word, entity_id FROM search_term "
        "WHERE practice_id = :p) t), (SELECT array_agg(w ORDER BY w) FROM (SELECT kind, word FROM search_word "
        "WHERE practice_id = :p) w)"
    )

    @settings(max_examples=25, deadline=None)
    @given(
        st.dictionaries(st.sampled_from(clients), st.lists(CLIENT_CHANGES, min_size=1, max_size=3)),
        st.dictionaries(st.sampled_from(patients), st.lists(PATIENT_CHANGES, min_size=1, max_size=2)),
    )
    def one_statement_each(client_changes, patient_changes):  # noqa: ANN001, ANN202
        with ws_db.as_app(practice) as session:
            for statement, changes in ((UPDATE_CLIENTS, client_changes), (UPDATE_PATIENTS, patient_changes)):
                if changes:
                    session.execute(statement, {
                        "p": a1.practice_id, "ids": list(changes),
                        "changes": [json.dumps(dict(change)) for change in changes.values()]})  # fmt: skip
        with ws_db.system() as session:
            maintained = session.execute(snapshot, {"p": a1.practice_id}).one()
            session.execute(text("SELECT search_reindex(:p)"), {"p": a1.practice_id})
            assert maintained == session.execute(snapshot, {"p": a1.practice_id}).one()

    one_statement_each()


def _words_of(db, practice_id):  # noqa: ANN001, ANN202
    with db.system() as session:
        return _words(session, practice_id, "client")
