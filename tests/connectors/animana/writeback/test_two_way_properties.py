"""Generated (hypothesis) sequences of local writes — through a service and as raw SQL of the application role —
interleaved with Animana-side edits, dispatcher pushes and syncs, with faults on (5xx, lost answers after commit).
After quiescence:

- every row written here agrees with Animana, or has an open conflict, or a dead letter saying why;
- no new client is in Animana twice;
- every overlapping edit (Animana changed a field whose local change it had not acknowledged yet, to a value
  neither side had) is a recorded conflict field, and every conflict field is one both sides changed;
- a following full sync changes nothing.

Real simulator over HTTP, real PostgreSQL; the practice's clients and agenda are in hybrid mode."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from connectors.animana.client import AnimanaClient
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, set_modes
from warehouse.scheduling.transitions import cancel
from warehouse.security.permissions import Actor

FIELDS = ("last_name", "city")
ROWS = 3  # clients (and appointments) each example works on: few, so edits overlap
_values = itertools.count()  # every value written is new: an edit never happens to restore an older value

operation = st.one_of(
    st.tuples(st.just("local"), st.integers(0, ROWS - 1), st.sampled_from(FIELDS)),
    st.tuples(st.just("animana"), st.integers(0, ROWS - 1), st.sampled_from(FIELDS)),
    st.tuples(st.just("reason"), st.integers(0, ROWS - 1)),
    st.tuples(st.just("cancel"), st.integers(0, ROWS - 1)),
    st.tuples(
        st.just("new_client"),
    ),
    st.tuples(
        st.just("push"),
    ),
    st.tuples(
        st.just("sync"),
    ),
)


class Run:
    """One example's rows and what it did, read back at the end."""

    def __init__(self, world: SyncWorld, practice: LinkedPractice, client: AnimanaClient) -> None:
        self.world, self.practice, self.client = world, practice, client
        # Rows in step with Animana (earlier examples' conflicts and dead letters stay with their rows).
        with as_app(world, practice) as session:
            self.started = session.execute(text("SELECT clock_timestamp()")).scalar_one()
            self.clients = session.execute(
                text("SELECT id, animana_id FROM client WHERE animana_id IS NOT NULL AND NOT writeback_pending "
                     "ORDER BY id LIMIT :n"), {"n": ROWS},
            ).all()  # fmt: skip
            self.appointments = session.execute(
                text("SELECT id, animana_id FROM appointment WHERE animana_id IS NOT NULL AND NOT writeback_pending "
                     "AND status IN ('booked', 'cancelled') ORDER BY status, id LIMIT :n"), {"n": ROWS},
            ).all()  # fmt: skip
        assert len(self.clients) == len(self.appointments) == ROWS
        self.new_clients: list[str] = []
        self.overlaps: set[tuple[int, str]] = set()  # Animana edited while our change was unacknowledged
        self.written_here: set[tuple[int, str]] = set()
        self.edited_there: set[tuple[int, str]] = set()

    def do(self, op: tuple) -> None:
        kind = op[0]
        value = f"W{next(_values)}"
        if kind == "local":
            self.written_here.add((self.clients[op[1]].id, op[2]))
            with as_app(self.world, self.practice) as session:
                session.execute(
                    text(f"UPDATE client SET {op[2]} = :v WHERE id = :c"),
                    {"v": value, "c": self.clients[op[1]].id},
                )
        elif kind == "animana":
            row = self.clients[op[1]]
            self.edited_there.add((row.id, op[2]))
            # Overlapping: our change of the field is not in Animana yet. Not merely unacknowledged: a write whose
            # answer was lost may already be there, and then this edit simply comes after it.
            there = self.client.get(self.practice.animana_id, "relations", int(row.animana_id))
            if self._unacknowledged(row.id, op[2]) and getattr(there, op[2]) != self._local(row.id, op[2]):
                self.overlaps.add((row.id, op[2]))
            self.world.sim.edit(self.practice.animana_id, "relations", int(row.animana_id), {op[2]: value})
        elif kind == "reason":
            with as_app(self.world, self.practice) as session:
                session.execute(
                    text("UPDATE appointment SET reason = :v WHERE id = :a"),
                    {"v": value, "a": self.appointments[op[1]].id},
                )
        elif kind == "cancel":
            desk = Actor.at(None, self.practice.practice_id, {"receptionist"})
            with as_app(self.world, self.practice) as session:
                status = session.execute(
                    text("SELECT status FROM appointment WHERE id = :a"), {"a": self.appointments[op[1]].id}
                ).scalar_one()
                if status == "booked":
                    cancel(session, desk, practice_id=self.practice.practice_id,
                           appointment_id=self.appointments[op[1]].id, reason=value)  # fmt: skip
        elif kind == "new_client":
            with as_app(self.world, self.practice) as session:
                session.execute(
                    text("INSERT INTO client (practice_id, last_name) VALUES (:p, :v)"),
                    {"p": self.practice.practice_id, "v": value},
                )
            self.new_clients.append(value)
        elif kind == "push":
            self.push()
        elif kind == "sync":
            self.sync()

    def _local(self, client_id: int, field: str) -> str | None:
        with as_app(self.world, self.practice) as session:
            return session.execute(
                text(f"SELECT {field} FROM client WHERE id = :c"), {"c": client_id}
            ).scalar()

    def _unacknowledged(self, client_id: int, field: str) -> bool:
        """A local change of the field Animana has not acknowledged (an open entry carries it)."""
        with as_app(self.world, self.practice) as session:
            return bool(
                session.execute(
                    text("SELECT EXISTS (SELECT FROM writeback_outbox WHERE table_name = 'client' AND row_id = :c "
                         "AND state IN ('pending', 'held', 'dead') AND changes ? :f)"),
                    {"c": client_id, "f": field},
                ).scalar()
            )  # fmt: skip

    def push(self) -> None:
        push(self.world.db.app_engine, self.client, self.practice, master_key=MASTER_KEY)

    def sync(self, *, full: bool = False) -> None:
        sync_all(self.world.db.app_engine, self.client, [self.practice], master_key=MASTER_KEY, full=full)

    def quiesce(self) -> None:
        """Faults off, then push and sync until nothing is due (backoffs made due at once)."""
        self.world.sim.configure(faults=0.0, response_lost=0.0)
        for _ in range(6):
            with as_app(self.world, self.practice) as session:
                session.execute(
                    text("UPDATE writeback_outbox SET next_attempt_at = now() WHERE state = 'pending'")
                )
            self.push()
            self.sync()
            with as_app(self.world, self.practice) as session:
                due = session.execute(
                    text("SELECT count(*) FROM writeback_outbox o WHERE state = 'pending' AND NOT EXISTS ("
                         "SELECT FROM writeback_outbox h WHERE h.table_name = o.table_name AND h.row_id = o.row_id "
                         "AND h.state IN ('held', 'dead'))")
                ).scalar()  # fmt: skip
            if not due:
                return
        raise AssertionError("the outbox never drained")

    def snapshot(self) -> tuple:
        with as_app(self.world, self.practice) as session:
            rows = session.execute(
                text("SELECT id, last_name, city FROM client WHERE id = ANY(:ids) ORDER BY id"),
                {"ids": [r.id for r in self.clients]},
            ).all()
            appointments = session.execute(
                text("SELECT id, status, reason FROM appointment WHERE id = ANY(:ids) ORDER BY id"),
                {"ids": [r.id for r in self.appointments]},
            ).all()
            conflicts = session.execute(
                text("SELECT state, count(*) FROM writeback_conflict GROUP BY 1 ORDER BY 1")
            ).all()
        # Not the outbox's states: a full sync may rightly supersede an entry whose value Animana already holds.
        return rows, appointments, conflicts


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=4, max_size=14))
def test_no_local_write_is_lost_doubled_or_silently_reverted(synced_world: SyncWorld, ops):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", ("clients", "agenda"))
    synced_world.sim.configure(faults=0.15, fault_kinds=["error_500", "error_503"], response_lost=0.25)
    with synced_world.client() as client:
        run = Run(synced_world, practice, client)
        for op in ops:
            run.do(op)
        run.quiesce()

        with as_app(synced_world, practice) as session:
            open_rows = {
                (r.table_name, r.row_id)
                for r in session.execute(
                    text("SELECT table_name, row_id FROM writeback_conflict WHERE state = 'open'")
                )
            }
            dead = session.execute(
                text("SELECT table_name, row_id, last_error FROM writeback_outbox WHERE state = 'dead'")
            ).all()
            assert all(d.last_error for d in dead), "a dead letter without its reason"
            dead_rows = {(d.table_name, d.row_id) for d in dead}
            recorded = {
                (r.row_id, column)
                for r in session.execute(
                    text("SELECT row_id, fields FROM writeback_conflict WHERE table_name = 'client' "
                         "AND row_id = ANY(:ids) AND detected_at >= :t"),
                    {"ids": [c.id for c in run.clients], "t": run.started},
                )
                for column in r.fields
            }  # fmt: skip
            local_clients = {
                r.id: r for r in session.execute(
                    text("SELECT id, animana_id, last_name, city FROM client WHERE id = ANY(:ids)"),
                    {"ids": [c.id for c in run.clients]},
                )
            }  # fmt: skip
            local_appointments = session.execute(
                text("SELECT id, animana_id, status, reason FROM appointment WHERE id = ANY(:ids)"),
                {"ids": [a.id for a in run.appointments]},
            ).all()
        # Agreement with Animana, or a conflict / dead letter a person sees.
        for row in local_clients.values():
            if ("client", row.id) in open_rows | dead_rows:
                continue
            there = client.get(practice.animana_id, "relations", int(row.animana_id))
            assert (there.last_name, there.city) == (row.last_name, row.city), row
        for row in local_appointments:
            if ("appointment", row.id) in open_rows | dead_rows:
                continue
            there = client.get(practice.animana_id, "agenda", int(row.animana_id))
            assert (there.status, there.reason) == (row.status, row.reason), row
        # Every overlapping edit became a conflict field, and every conflict field is one both sides changed (a
        # local write made after an Animana edit the sync had not brought in yet is a conflict too, rightly).
        assert run.overlaps <= recorded <= run.written_here & run.edited_there
        # Each new client once in Animana.
        names = [
            r.last_name
            for r in client.iter_records(practice.animana_id, "relations")
            if hasattr(r, "last_name")
        ]
        for name in run.new_clients:
            assert names.count(name) == 1, name
        # And a full sync after all that changes nothing.
        before = run.snapshot()
        run.sync(full=True)
        assert run.snapshot() == before
