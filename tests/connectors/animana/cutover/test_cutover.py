"""Cut-over of a module on a synced practice, over real HTTP to the simulator and a real PostgreSQL: reconciled
equal, native afterwards, never read from Animana again, and local work goes on without the outbox."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import text

from connectors.animana import AnimanaClient, load_settings
from connectors.animana.cutover import AnimanaCutover, module_resources
from connectors.animana.sync.practice import sync_practice
from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox, set_modes
from warehouse.integration.capture import writing_as
from warehouse.integration.cutover import Confirmation, CutoverResult, cut_over
from warehouse.integration.errors import IntegrationError
from warehouse.integration.modes import mode_of
from warehouse.security.permissions import Actor, NotPermitted

# A local write per module (as the application role), on a row the practice already has.
LOCAL_WRITES = {
    "clients": "UPDATE client SET city = 'Zwolle' WHERE id = (SELECT min(id) FROM client)",
    "agenda": "UPDATE appointment SET reason = 'Controle na cut-over' WHERE id = (SELECT min(id) FROM appointment)",
    "records": "UPDATE visit SET plan = 'Herhalen over 2 weken' WHERE id = (SELECT min(id) FROM visit)",
    "invoices": "UPDATE payment SET method = CASE method WHEN 'cash' THEN 'pin' ELSE 'cash' END "
    "WHERE id = (SELECT min(id) FROM payment)",
}


def _actor(world: SyncWorld) -> Actor:
    return Actor(None, {p.practice_id: frozenset({"franchise_admin"}) for p in world.practices})


def _cut_over(world: SyncWorld, module: str, **kwargs) -> CutoverResult:  # noqa: ANN003
    practice = world.practices[0]
    with world.client() as client:
        port = AnimanaCutover(world.db.app_engine, client, master_key=MASTER_KEY, drain_deadline_s=20)
        return cut_over(
            world.db.app_engine, port, _actor(world), practice_id=practice.practice_id, module=module,
            master_key=MASTER_KEY, **kwargs,
        )  # fmt: skip


def _mode(world: SyncWorld, module: str) -> str:
    practice = world.practices[0]
    with as_app(world, practice) as session:
        return mode_of(session, practice.practice_id, module)


def _audit(world: SyncWorld) -> list[dict]:
    with as_app(world, world.practices[0]) as session:
        return [
            dict(r)
            for r in session.execute(
                text("SELECT action, detail FROM audit_log WHERE entity = 'integration_cutover' ORDER BY seq")
            ).mappings()
        ]


@pytest.mark.parametrize("module", ["clients", "agenda", "records", "invoices"])
def test_a_module_cuts_over_equal_then_is_never_read_again_and_works_natively(
    synced_world: SyncWorld, module
):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", (module,))
    with as_app(synced_world, practice) as session:  # a change waiting for Animana: the drain sends it
        session.execute(text(LOCAL_WRITES[module]))
    assert [e["state"] for e in outbox(synced_world, practice)] == ["pending"]

    result = _cut_over(synced_world, module)

    assert result.outcome == "native" and result.sent == 1
    assert result.difference_count == 0
    assert {r.resource for r in result.resources} == set(module_resources(module))
    for r in result.resources:
        assert r.api == r.mirrored == r.equal > 0, r
    assert _mode(synced_world, module) == "native"
    (audit,) = _audit(synced_world)
    assert audit["action"] == "update" and audit["detail"]["module"] == module
    assert (
        audit["detail"]["reconciliation"] == result.summary() and audit["detail"]["accepted_because"] is None
    )

    # Animana changes everything; the next sync reads nothing of the native module, the rest as before.
    synced_world.sim.mutate(practice.animana_id, edits=60, cancellations=5, seed=3)
    with synced_world.client() as client:
        synced = sync_practice(synced_world.db.app_engine, client, practice, master_key=MASTER_KEY)
    assert not set(synced.counts) & set(module_resources(module))
    assert synced.records > 0

    # Work goes on here: a local write is kept and nothing is captured for Animana.
    with as_app(synced_world, practice) as session:
        session.execute(text(LOCAL_WRITES[module].replace("min(id)", "max(id)")))
    assert len(outbox(synced_world, practice)) == 1  # only the drained entry


def test_a_difference_stops_the_cut_over_and_is_listed_until_confirmed_with_a_reason(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    # A row changed here behind the sync's back (as the sync writer: nothing is captured), as a faulty load would.
    with synced_world.db.system("test: a row that drifted") as session:
        writing_as(session, "writeback")
        drifted = session.execute(
            text(
                "UPDATE vaccination SET batch_number = 'ANDERS-1' WHERE practice_id = :p "
                "AND id = (SELECT min(id) FROM vaccination WHERE practice_id = :p) RETURNING animana_id"
            ),
            {"p": practice.practice_id},
        ).scalar_one()
        gone = session.execute(
            text(
                "DELETE FROM prescription WHERE practice_id = :p "
                "AND id = (SELECT min(id) FROM prescription WHERE practice_id = :p) RETURNING animana_id"
            ),
            {"p": practice.practice_id},
        ).scalar_one()

    stopped = _cut_over(synced_world, "records")

    assert stopped.outcome == "stopped" and stopped.difference_count == 2
    listed = {(d.resource, d.animana_id, d.kind, d.fields) for d in stopped.differences}
    assert listed == {
        ("vaccinations", drifted, "different", ("batch_number",)),
        ("prescriptions", gone, "missing", ()),
    }
    assert _mode(synced_world, "records") == "animana" and _audit(synced_world) == []
    with pytest.raises(IntegrationError, match="why"):
        _cut_over(synced_world, "records", confirmation=Confirmation("  "))

    done = _cut_over(synced_world, "records", confirmation=Confirmation("Batch number corrected on paper"))

    assert done.outcome == "native" and _mode(synced_world, "records") == "native"
    (audit,) = _audit(synced_world)
    assert audit["detail"]["accepted_because"] == "Batch number corrected on paper"
    assert {(d["resource"], d["kind"]) for d in audit["detail"]["differences"]} == {
        ("vaccinations", "different"),
        ("prescriptions", "missing"),
    }


def test_an_animana_edit_after_the_final_sync_is_a_difference(synced_world: SyncWorld):
    """The reconciliation reads Animana itself, not the mirror: an edit that lands between the final sync and the
    reconciliation is caught (here: made before a dry run, whose sync is skipped by running the edit later)."""
    practice = synced_world.practices[0]
    with as_app(synced_world, practice) as session:
        animana_id = session.execute(text("SELECT animana_id FROM client ORDER BY id LIMIT 1")).scalar_one()
    synced_world.sim.edit(practice.animana_id, "relations", int(animana_id), {"city": "Kampen"})
    rehearsal = _cut_over(synced_world, "clients", dry_run=True)  # the sync brings the edit in: equal
    assert rehearsal.outcome == "rehearsed" and rehearsal.difference_count == 0
    assert _audit(synced_world)[0]["action"] == "read"
    with synced_world.db.system("test: mirror lags") as session:
        writing_as(session, "writeback")
        session.execute(text("UPDATE client SET city = 'Zwolle' WHERE animana_id = :a"), {"a": animana_id})
    with synced_world.client() as client:
        port = AnimanaCutover(synced_world.db.app_engine, client, master_key=MASTER_KEY)
        port.final_sync = lambda practice, module: {}  # type: ignore[method-assign]  # the edit lands after it
        result = cut_over(
            synced_world.db.app_engine, port, _actor(synced_world), practice_id=practice.practice_id,
            module="clients", master_key=MASTER_KEY,
        )  # fmt: skip
    assert result.outcome == "stopped"
    assert [(d.animana_id, d.fields) for d in result.differences] == [(animana_id, ("city",))]


def test_dead_letters_and_conflicts_refuse_the_cut_over_and_are_named(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", ("clients",))
    with as_app(synced_world, practice) as session:
        client_id = session.execute(
            text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Zonder-Iban') RETURNING id"),
            {"p": practice.practice_id},
        ).scalar_one()
        session.execute(
            text("UPDATE writeback_outbox SET state = 'dead', last_error = 'iban: checksum does not match'")
        )
    with pytest.raises(IntegrationError, match=rf"1 dead letter\(s\): client {client_id} \(iban: checksum"):
        _cut_over(synced_world, "clients")
    rehearsal = _cut_over(synced_world, "clients", dry_run=True)
    assert rehearsal.outcome == "rehearsed" and "dead letter" in rehearsal.blockers[0]
    assert _mode(synced_world, "clients") == "hybrid"


def test_a_practice_native_in_every_module_runs_without_animana(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    for module in ("clients", "agenda", "records", "invoices"):
        assert _cut_over(synced_world, module).outcome == "native"
    # Animana is gone: nothing listens where the client would connect.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    sim = synced_world.sim
    client = AnimanaClient(load_settings(url=gone, client_id=sim.client_id, client_secret=sim.client_secret))
    with as_app(synced_world, practice) as session:
        session.execute(text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Na-Animana')"),
                        {"p": practice.practice_id})  # fmt: skip
        session.execute(text(LOCAL_WRITES["agenda"]))
    with client:
        results = sync_all(synced_world.db.app_engine, client, [practice], master_key=MASTER_KEY)
        report = push(synced_world.db.app_engine, client, practice, master_key=MASTER_KEY)
    assert results[0].records == 0 and results[0].counts == {}
    assert report.handled == 0
    assert outbox(synced_world, practice) == []


@pytest.mark.parametrize("role", ["veterinarian", "receptionist", "franchise_manager"])
def test_only_a_manager_of_the_integration_at_that_practice_may_cut_over(synced_world: SyncWorld, role: str):
    """The permission matrix (tests/warehouse/security) calls services in a rolled-back session; a cut-over runs its
    own transactions against Animana, so its refusal is checked here: before anything is sent or read."""
    practice, other = synced_world.practices[0], synced_world.practices[1]
    actor = Actor(
        None, {practice.practice_id: frozenset({role}), other.practice_id: frozenset({"franchise_admin"})}
    )
    with synced_world.client() as client:
        port = AnimanaCutover(synced_world.db.app_engine, client, master_key=MASTER_KEY, drain_deadline_s=20)
        with pytest.raises(NotPermitted, match="manage the Animana integration"):
            cut_over(synced_world.db.app_engine, port, actor, practice_id=practice.practice_id, module="clients",
                     master_key=MASTER_KEY)  # fmt: skip
    assert _mode(synced_world, "clients") != "native"
    assert _audit(synced_world) == []
