"""Animana beside the demo app: the seeded simulator keeps running while the app is open, the app's settings point
at it, and a background loop does what Dagster's sensor and schedule do in production — push the write-back
outbox every few seconds, sync incrementally every minute. So a booking made in the browser reaches "Animana"
(synchronously in animana mode, by the loop in hybrid), and an edit made there (``POST /_sim/edit``) shows up.

The demo practices stand in the three phases of a move off Animana (`DEMO_MODES`)."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from connectors.animana import AnimanaClient, AnimanaError, load_settings
from connectors.animana.simulator import RunningSimulator, running_simulator
from connectors.animana.sync.links import LinkedPractice, linked_practices
from connectors.animana.sync.practice import PracticeResult
from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import PushReport, push
from vetconnect.animana_cli import DEMO_SEED, demo_scale
from vetconnect.demo_loops import BackgroundLoop
from warehouse.integration.modes import set_mode
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.schema.tenancy import AppUser
from warehouse.security.permissions import Actor

ANIMANA_PORT = 8765  # as `vetconnect animana simulate`
PUSH_EVERY_S = 5.0
SYNC_EVERY_S = 60.0
# Phase 2 at Amstel (VetConnect owns clients and agenda, Animana is kept current), phase 1 everywhere else
# (Animana is the back end: Domstad is the all-Animana practice), phase 3 for Spaarne's agenda (Animana is history).
DEMO_MODES: dict[tuple[str, str], str] = {
    ("dz-amstel", "clients"): "hybrid",
    ("dz-amstel", "agenda"): "hybrid",
    ("dz-haarlem", "agenda"): "native",
}
DEMO_MODE_SWITCHER = "admin"  # the franchise admin makes the switches (audited as theirs)
SETTINGS_ENV = ("VETCONNECT_ANIMANA_URL", "VETCONNECT_ANIMANA_CLIENT_ID", "VETCONNECT_ANIMANA_CLIENT_SECRET")


@dataclass(frozen=True)
class DemoAnimana:
    sim: RunningSimulator
    practices: list[LinkedPractice]

    def client(self) -> AnimanaClient:
        return AnimanaClient(
            load_settings(
                url=self.sim.base_url, client_id=self.sim.client_id, client_secret=self.sim.client_secret
            )
        )


@contextmanager
def demo_animana(
    admin_engine: Engine, codes: Sequence[str], anchor: dt.datetime, *, port: int = ANIMANA_PORT
) -> Iterator[DemoAnimana]:
    """The demo's seeded simulator (its "now" is ``anchor``) on ``port``, with VETCONNECT_ANIMANA_* pointing at
    it for this process and the app it starts; both are undone on exit."""
    practices = [p for p in linked_practices(admin_engine) if p.code in set(codes)]
    animana_ids = [p.animana_id for p in practices]
    # The sync asks every practice's counts before loading them in the same order: an LRU cache smaller than the
    # practices would evict each one just before its turn, and generate all of them twice.
    with running_simulator(
        practices=max(animana_ids) - 1000, seed=DEMO_SEED, scale=demo_scale(), anchor=anchor,
        cache_practices=len(animana_ids), port=port,
    ) as sim:  # fmt: skip
        before = {name: os.environ.get(name) for name in SETTINGS_ENV}
        os.environ.update(
            dict(zip(SETTINGS_ENV, (sim.base_url, sim.client_id, sim.client_secret), strict=True))
        )
        try:
            yield DemoAnimana(sim, practices)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def set_demo_modes(app_engine: Engine, admin_engine: Engine) -> list[tuple[str, str, str]]:
    """Switch the demo practices' modules to `DEMO_MODES`, as the demo's franchise admin would on the Integration
    page (permitted, confirmed, audited). Returns (practice, module, mode) switched."""
    with system_session(
        admin_engine, reason="demo: practices and admin for the integration modes"
    ) as session:
        admin = session.scalar(select(AppUser.id).where(AppUser.username == DEMO_MODE_SWITCHER))
        ids = {code: tenant_id_by_code(session, code) for code, _ in DEMO_MODES}
    switched = []
    for (code, module), mode in DEMO_MODES.items():
        practice_id = ids[code]
        if practice_id is None or admin is None:
            raise LookupError(f"the demo world has no practice {code!r} or no {DEMO_MODE_SWITCHER!r} account")
        context = AccessContext.for_practices([practice_id], user_id=admin)
        with tenant_session(app_engine, context) as session:
            actor = Actor.at(admin, practice_id, {"franchise_admin"})
            set_mode(session, actor, practice_id=practice_id, module=module, mode=mode, confirmed=True)
        switched.append((code, module, mode))
    return switched


class WritebackLoop(BackgroundLoop):
    """Push every `PUSH_EVERY_S`, sync every `SYNC_EVERY_S`; says on the console what went to or came from
    Animana. A failing round (Animana or the database away) is reported and the next one tries again."""

    thread_name = "demo-writeback"

    def __init__(
        self, app_engine: Engine, animana: DemoAnimana, *, master_key: bytes, console: Console
    ) -> None:
        self._engine = app_engine
        self._animana = animana
        self._key = master_key
        self._console = console
        super().__init__()

    def push_once(self, client: AnimanaClient) -> list[PushReport]:
        reports = [
            push(self._engine, client, p, master_key=self._key, max_entries=500)
            for p in self._animana.practices
        ]
        for r in reports:
            if r.handled:
                self._console.print(
                    f"• write-back {r.practice} → Animana: {r.sent} sent, {r.retried} to retry, {r.dead} refused"
                )
        return reports

    def sync_once(self, client: AnimanaClient) -> list[PracticeResult]:
        results = sync_all(self._engine, client, self._animana.practices, master_key=self._key)
        for result in results:
            t = result.totals()
            if t.inserted or t.updated or t.deleted:
                self._console.print(
                    f"• sync Animana → {result.practice.code}: {t.inserted} new, {t.updated} changed, {t.deleted} gone"
                )
        return results

    def run(self) -> None:
        next_sync = time.monotonic() + SYNC_EVERY_S  # the demo has just synced
        with self._animana.client() as client:
            while not self._stop.is_set():
                try:
                    self.push_once(client)
                    if (now := time.monotonic()) >= next_sync:
                        self.sync_once(client)
                        next_sync = now + SYNC_EVERY_S
                except (AnimanaError, SQLAlchemyError) as exc:
                    self._console.print(
                        f"[yellow]write-back/sync round failed, next round retries:[/yellow] {exc}"
                    )
                self._stop.wait(PUSH_EVERY_S)
