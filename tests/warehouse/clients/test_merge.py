"""Merging duplicate clients and patients against PostgreSQL: every referring row moves (the catalogue decides which
rows refer), the duplicate is retired pointing at the survivor, the undo restores every table exactly, and what
may not be merged or undone is refused with the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import MASTER_KEY, Database, drop_database, open_database
from tests.factories import TZ, build_world
from warehouse.clients.merge import (
    MergeError,
    RecordRef,
    find_records,
    merge_clients,
    merge_patients,
    record_overview,
)
from warehouse.clients.merge_references import LEFT_ALONE, references_to
from warehouse.clients.merge_undo import merges_of_day, undo_merge
from warehouse.kernel.tenancy import AccessContext, apply_context
from warehouse.schema import Base, tenancy_of
from warehouse.security.permissions import Actor, NotPermitted

# Tables a merge does not write itself and whose rows triggers keep (the log, the marts' queue, the search index,
# the write-back's outbox of an unlinked practice stays empty): not part of "everything is as it was".
NOT_COMPARED = {
    "audit_log",
    "audit_chain_head",
    "record_merge",
    "mart_dirty_day",
    "search_term",
    "search_word",
}
COMPARED = sorted(
    t.name
    for t in Base.metadata.sorted_tables
    if tenancy_of(t.info) == "practice" and t.name not in NOT_COMPARED
)


@dataclass
class Pair:
    practice_id: int
    user_id: int
    client: tuple[int, int]  # (survivor, duplicate)
    patient: tuple[int, int]


@pytest.fixture(scope="module")
def merge_db(server_url: str, template_db: str) -> Iterator[Database]:
    db = open_database(server_url, template_db)
    with db.system() as session:
        db.world = build_world(session, MASTER_KEY)  # type: ignore[attr-defined]
    yield db
    db.dispose()
    drop_database(server_url, db.name)


def _add_survivors(session: Session, practice_id: int, client_id: int, patient_id: int) -> Pair:
    """A second client with a dog of its own at the practice; the world's client and dog (a row in every table)
    are the duplicates. The survivor client co-owns the world's dog, so each merge meets one owner link the
    survivor already has (removed, not moved), and the world's client owns a cat too (a link that moves)."""
    params = {"p": practice_id, "wc": client_id, "wp": patient_id}
    params["nc"] = session.execute(
        text(
            "INSERT INTO client (practice_id, last_name, initials) VALUES (:p, 'Jansen', 'J.') RETURNING id"
        ),
        params,
    ).scalar_one()
    params["np"], params["cat"] = session.scalars(
        text("INSERT INTO patient (practice_id, name, species) VALUES (:p, 'Bello', 'dog'), (:p, 'Pluis', 'cat') "
             "RETURNING id"), params
    ).all()  # fmt: skip
    session.execute(
        text(
            "INSERT INTO client_patient (practice_id, client_id, patient_id, is_primary) VALUES "
            "(:p, :nc, :np, true), (:p, :nc, :wp, false), (:p, :wc, :cat, true)"
        ),
        params,
    )
    # The references without a foreign key that the factories leave empty.
    session.execute(text("UPDATE document SET client_id = :wc WHERE practice_id = :p"), params)
    session.execute(text("UPDATE event SET client_id = :wc WHERE practice_id = :p"), params)
    session.execute(text("UPDATE device_message SET patient_id = :wp WHERE practice_id = :p"), params)
    return Pair(practice_id, 0, (params["nc"], client_id), (params["np"], patient_id))


@pytest.fixture
def merging(merge_db: Database) -> Iterator[tuple[Session, Pair]]:
    """An application session at a1 inside a transaction that is rolled back (the world stays as built)."""
    a1 = merge_db.world.practices["a1"]
    session = Session(merge_db.app_engine)
    try:
        session.begin()
        apply_context(session, AccessContext.for_practices([a1.practice_id], user_id=a1.user_id))
        pair = _add_survivors(session, a1.practice_id, a1.client_id, a1.patient_id)
        pair.user_id = a1.user_id
        yield session, pair
    finally:
        session.rollback()
        session.close()


def _vet(pair: Pair) -> Actor:
    return Actor.at(pair.user_id, pair.practice_id, {"veterinarian"})


def _counts(session: Session, kind: str, practice_id: int, record_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ref in references_to(session, kind):
        counts[f"{ref.table}.{ref.column}"] = session.execute(
            text(f'SELECT count(*) FROM "{ref.table}" WHERE practice_id = :p AND "{ref.column}" = :id'),
            {"p": practice_id, "id": record_id},
        ).scalar_one()
    return counts


def snapshot(session: Session, practice_id: int) -> dict[str, list[str]]:
    """Every row of the practice in every compared table, as text, sorted."""
    return {
        table: sorted(
            session.scalars(
                text(f'SELECT to_jsonb(t)::text FROM "{table}" t WHERE practice_id = :p'), {"p": practice_id}
            )
        )
        for table in COMPARED
    }


def _merge(session: Session, kind: str, pair: Pair, now: dt.datetime | None = None):  # noqa: ANN202
    survivor, duplicate = getattr(pair, kind)
    merge = merge_clients if kind == "client" else merge_patients
    return merge(session, _vet(pair), RecordRef(pair.practice_id, survivor), RecordRef(pair.practice_id, duplicate),
                 now=now)  # fmt: skip


@pytest.mark.parametrize("kind", ["client", "patient"])
def test_every_referring_row_moves_to_the_survivor(merging, kind):
    session, pair = merging
    survivor, duplicate = getattr(pair, kind)
    before_dup = _counts(session, kind, pair.practice_id, duplicate)
    before_kept = _counts(session, kind, pair.practice_id, survivor)
    empty = [name for name, n in before_dup.items() if n == 0]
    assert empty == [], f"the duplicate has no rows in {empty}: the test would prove nothing for them"

    outcome = _merge(session, kind, pair)

    after_dup = _counts(session, kind, pair.practice_id, duplicate)
    after_kept = _counts(session, kind, pair.practice_id, survivor)
    assert set(after_dup.values()) == {0}
    # The one owner link both had is removed, not moved; everything else adds up.
    assert outcome.removed == {"client_patient": 1}
    expected = {
        name: before_kept[name] + before_dup[name] - (name.startswith("client_patient."))
        for name in before_dup
    }
    assert after_kept == expected
    assert sum(outcome.moved.values()) == sum(before_dup.values()) - 1
    gone = session.execute(
        text(f"SELECT deleted_at IS NOT NULL, merged_into_id FROM {kind} WHERE id = :id"), {"id": duplicate}
    ).one()
    assert tuple(gone) == (True, survivor)
    audit = session.execute(
        text("SELECT entity_ids, detail FROM audit_log WHERE action = 'merge' ORDER BY seq DESC LIMIT 1")
    ).one()
    assert audit.entity_ids == [survivor, duplicate] and audit.detail["merge_id"] == outcome.merge_id


def test_a_moved_owner_link_does_not_give_the_surviving_dog_a_second_primary_owner(merging):
    session, pair = merging
    survivor, duplicate = pair.patient
    _merge(session, "patient", pair)
    primaries = session.execute(
        text("SELECT count(*) FROM client_patient WHERE patient_id = :a AND is_primary"), {"a": survivor}
    ).scalar_one()
    assert primaries == 1


@pytest.mark.parametrize("kind", ["client", "patient"])
def test_undo_restores_every_table_exactly(merging, kind):
    session, pair = merging
    before = snapshot(session, pair.practice_id)
    outcome = _merge(session, kind, pair)
    assert snapshot(session, pair.practice_id) != before
    undone = undo_merge(session, _vet(pair), practice_id=pair.practice_id, merge_id=outcome.merge_id)
    assert (undone.moved, undone.removed) == (outcome.moved, outcome.removed)
    after = snapshot(session, pair.practice_id)
    assert {t: rows for t, rows in after.items() if rows != before[t]} == {}
    actions = session.scalars(
        text("SELECT action FROM audit_log WHERE action IN ('merge', 'unmerge') ORDER BY seq")
    )
    assert list(actions)[-2:] == ["merge", "unmerge"]
    with pytest.raises(MergeError, match="undone already"):
        undo_merge(session, _vet(pair), practice_id=pair.practice_id, merge_id=outcome.merge_id)


def test_undo_is_refused_once_the_practice_day_has_closed(merging):
    session, pair = merging
    late = dt.datetime(2026, 12, 3, 23, 40, tzinfo=TZ)  # 22:40 UTC: still the 3rd in Amsterdam
    outcome = _merge(session, "client", pair, now=late)
    (listed,) = merges_of_day(session, pair.practice_id, now=late + dt.timedelta(minutes=10))
    assert (listed.id, listed.undo_refused, listed.survivor) == (outcome.merge_id, None, "J. Jansen")
    after_midnight = dt.datetime(2026, 12, 4, 0, 5, tzinfo=TZ)
    with pytest.raises(MergeError, match=r"day of this merge \(3 dec 2026\) has closed") as refused:
        undo_merge(
            session, _vet(pair), practice_id=pair.practice_id, merge_id=outcome.merge_id, now=after_midnight
        )
    assert refused.value.field == "merge"
    assert merges_of_day(session, pair.practice_id, now=after_midnight) == []  # a new day, a new list


def test_undo_is_refused_when_a_moved_row_changed_since(merging):
    session, pair = merging
    outcome = _merge(session, "client", pair)
    invoice_id = session.execute(
        text("SELECT id FROM invoice WHERE practice_id = :p AND client_id = :c"),
        {"p": pair.practice_id, "c": pair.client[0]},
    ).scalar_one()
    session.execute(text("UPDATE invoice SET due_on = DATE '2027-01-31' WHERE id = :i"), {"i": invoice_id})
    with pytest.raises(MergeError, match=f"invoice {invoice_id} changed since the merge"):
        undo_merge(session, _vet(pair), practice_id=pair.practice_id, merge_id=outcome.merge_id)
    (listed,) = merges_of_day(session, pair.practice_id)
    assert "Undoing would overwrite later work" in listed.undo_refused


def test_a_record_cannot_be_merged_with_itself(merging):
    session, pair = merging
    client = RecordRef(pair.practice_id, pair.client[0])
    with pytest.raises(MergeError, match="A client cannot be merged with itself") as refused:
        merge_clients(session, _vet(pair), client, client)
    assert refused.value.field == "duplicate"


def test_other_refusals_say_why(merging, merge_db):
    session, pair = merging
    vet = _vet(pair)
    other_practice = merge_db.world.practices["a2"]
    with pytest.raises(MergeError, match="same practice"):
        merge_clients(session, vet, RecordRef(pair.practice_id, pair.client[0]),
                      RecordRef(other_practice.practice_id, other_practice.client_id))  # fmt: skip
    cat = session.execute(
        text("INSERT INTO patient (practice_id, name, species) VALUES (:p, 'Minoes', 'cat') RETURNING id"),
        {"p": pair.practice_id},
    ).scalar_one()
    with pytest.raises(MergeError, match="Minoes \\(cat\\) and Bello \\(dog\\) are different species"):
        merge_patients(
            session, vet, RecordRef(pair.practice_id, pair.patient[0]), RecordRef(pair.practice_id, cat)
        )
    _merge(session, "client", pair)
    with pytest.raises(MergeError, match="was deleted \\(merged into client") as refused:
        merge_clients(
            session,
            vet,
            RecordRef(pair.practice_id, pair.client[1]),
            RecordRef(pair.practice_id, pair.client[0]),
        )
    assert refused.value.field == "survivor"
    with pytest.raises(NotPermitted, match="may not merge duplicate clients or patients"):
        merge_clients(session, Actor.at(pair.user_id, pair.practice_id, {"receptionist"}),
                      RecordRef(pair.practice_id, pair.client[0]), RecordRef(pair.practice_id, 999999))  # fmt: skip


def test_the_overview_counts_what_each_record_has_and_finds_by_name(merging):
    session, pair = merging
    survivor, duplicate = pair.client
    overview = record_overview(session, "client", RecordRef(pair.practice_id, duplicate))
    assert overview.label == "J. Jansen-a1"
    assert {t: overview.counts[t] for t in ("client_patient", "appointment", "invoice")} == {
        "client_patient": 2, "appointment": 1, "invoice": 1,
    }  # fmt: skip
    found = find_records(session, pair.practice_id, "client", "jansen")
    assert [f.ref.id for f in found] == [survivor, duplicate]


def test_every_column_naming_a_client_or_patient_is_moved_or_left_alone_for_a_reason(merging):
    """The catalogue against the lists: a new ``*_id`` column pointing at a client or patient without a foreign
    key must be added to ``UNENFORCED`` (moved) or ``LEFT_ALONE`` (with the reason)."""
    session, _ = merging
    for kind in ("client", "patient"):
        moved = {(r.table, r.column) for r in references_to(session, kind)}
        named = set(
            session.execute(
                text(
                    "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                    "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
                    "AND NOT c.relispartition AND a.attname = :column AND NOT a.attisdropped"
                ),
                {"column": f"{kind}_id"},
            ).all()
        )
        assert named - moved - set(LEFT_ALONE) == set()
        assert {("appointment", f"{kind}_id"), ("client_patient", f"{kind}_id")} <= moved


# --- merge then undo is the identity, on random small worlds --------------------------------------------------


@st.composite
def small_worlds(draw: st.DrawFn) -> dict:
    """Two or three clients and two to four animals (dogs, or a cat among them), random owner links, and
    appointments, invoices, weights, vaccinations and reminders pointing at random ones; then a random pair."""
    clients = draw(st.integers(2, 3))
    species = draw(st.lists(st.sampled_from(["dog", "dog", "cat"]), min_size=2, max_size=4))
    links = draw(
        st.sets(st.tuples(st.integers(0, clients - 1), st.integers(0, len(species) - 1)), max_size=6)
    )
    primary = draw(st.lists(st.booleans(), min_size=len(links), max_size=len(links)))
    pointing = st.tuples(st.integers(0, clients - 1), st.integers(0, len(species) - 1))
    kind = draw(st.sampled_from(["client", "patient"]))
    size = clients if kind == "client" else len(species)
    pair = draw(st.lists(st.integers(0, size - 1), min_size=2, max_size=2, unique=True))
    return {
        "clients": clients, "species": species, "links": sorted(links), "primary": primary,
        "appointments": draw(st.lists(pointing, max_size=4)), "invoices": draw(st.lists(pointing, max_size=3)),
        "weights": draw(st.lists(pointing, max_size=3)), "reminders": draw(st.lists(pointing, max_size=3)),
        "kind": kind, "pair": pair,
    }  # fmt: skip


def _build(session: Session, practice_id: int, franchise_id: int, resource_id: int, world: dict) -> dict:
    p = {"p": practice_id}
    clients = [
        session.execute(text("INSERT INTO client (practice_id, last_name) VALUES (:p, :n) RETURNING id"),
                        {**p, "n": f"Client {i}"}).scalar_one()
        for i in range(world["clients"])
    ]  # fmt: skip
    patients = [
        session.execute(text("INSERT INTO patient (practice_id, name, species) VALUES (:p, :n, :s) RETURNING id"),
                        {**p, "n": f"Dier {i}", "s": s}).scalar_one()
        for i, s in enumerate(world["species"])
    ]  # fmt: skip
    for (c, a), is_primary in zip(world["links"], world["primary"], strict=True):
        session.execute(text("INSERT INTO client_patient (practice_id, client_id, patient_id, is_primary) "
                             "VALUES (:p, :c, :a, :pr)"), {**p, "c": clients[c], "a": patients[a], "pr": is_primary})  # fmt: skip
    start = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
    for i, (c, a) in enumerate(world["appointments"]):
        at = start + dt.timedelta(hours=i)
        session.execute(text("INSERT INTO appointment (practice_id, resource_id, franchise_id, client_id, patient_id, "
                             "starts_at, ends_at, status) VALUES (:p, :r, :f, :c, :a, :s, :e, 'booked')"),
                        {**p, "r": resource_id, "f": franchise_id, "c": clients[c], "a": patients[a], "s": at,
                         "e": at + dt.timedelta(minutes=15)})  # fmt: skip
    for i, (c, _) in enumerate(world["invoices"]):
        session.execute(text("INSERT INTO invoice (practice_id, number, client_id, issued_on, status) "
                             "VALUES (:p, :n, :c, DATE '2026-11-02', 'issued')"),
                        {**p, "n": f"PROP-{clients[0]}-{i}", "c": clients[c]})  # fmt: skip
    for i, (_, a) in enumerate(world["weights"]):
        session.execute(text("INSERT INTO weight_measurement (practice_id, patient_id, measured_at, weight_grams) "
                             "VALUES (:p, :a, :t, :g)"), {**p, "a": patients[a], "t": start, "g": 1000 + i})  # fmt: skip
    for c, a in world["reminders"]:
        session.execute(text("INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on) "
                             "VALUES (:p, :a, :c, 'vaccination', DATE '2027-01-01')"),
                        {**p, "a": patients[a], "c": clients[c]})  # fmt: skip
    return {"client": clients, "patient": patients}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=small_worlds())
def test_merge_then_undo_is_the_identity(merging, merge_db, world):
    session, pair = merging
    a1 = merge_db.world.practices["a1"]
    savepoint = session.begin_nested()
    try:
        ids = _build(session, pair.practice_id, a1.franchise_id, a1.resource_id, world)
        kind = world["kind"]
        survivor, duplicate = (RecordRef(pair.practice_id, ids[kind][i]) for i in world["pair"])
        before = snapshot(session, pair.practice_id)
        merge = merge_clients if kind == "client" else merge_patients
        if (
            kind == "patient" and len({world["species"][i] for i in world["pair"]}) == 2
        ):  # a dog and a cat: refused, and nothing changed
            with pytest.raises(MergeError, match="different species"):
                merge(session, _vet(pair), survivor, duplicate)
            assert snapshot(session, pair.practice_id) == before
            return
        outcome = merge(session, _vet(pair), survivor, duplicate)
        assert set(_counts(session, kind, pair.practice_id, duplicate.id).values()) == {0}
        undo_merge(session, _vet(pair), practice_id=pair.practice_id, merge_id=outcome.merge_id)
        after = snapshot(session, pair.practice_id)
        assert {t: rows for t, rows in after.items() if rows != before[t]} == {}
    finally:
        savepoint.rollback()
