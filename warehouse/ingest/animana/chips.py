"""A microchip is unique among a practice's live patients (``uq_patient_microchip``); Animana does not insist.

When a page of animals claims a chip another patient keeps — a live patient here (registered in VetConnect or
synced earlier), or another animal of the same page — the chip stays on one of them and the others load without
it, each with a note in the quarantine naming the chip and where it was kept. Who keeps it: the patient already
holding it here; among animals of one page, the lowest Animana id. The page, its owners and the animals'
history load as usual; without this the unique index refused the page.

A chip that moves within a page (Animana swapped two animals' chips, or gave one's chip to another and the first a
new one) is no conflict: the animal losing it is cleared first, as the unique index checks every row at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psycopg
from psycopg import sql

from warehouse.ingest.animana.quarantine import quarantine_rejections
from warehouse.ingest.animana.rows import LoadTarget, Rejection
from warehouse.ingest.animana.staging import Staging
from warehouse.ingest.animana.statements import params


@dataclass(frozen=True)
class ChipHolder:
    microchip: str
    animana_id: str | None
    name: str
    patient_id: int | None  # set for a patient already here; None for an animal of the page
    raw: str | None  # the staged row (animals of the page)

    def describe(self) -> str:
        if self.animana_id is not None:
            return f"animal {self.animana_id} ({self.name})"
        return f"patient {self.patient_id} ({self.name}, registered in VetConnect)"

    def short(self) -> str:
        return f"animal {self.animana_id}" if self.animana_id is not None else f"patient {self.patient_id}"


# The staged animals whose chip is contested, and the live patients here keeping that chip after the page (one
# the page gives another chip, or none, lets go of it). Every query is bound to the practice (``%(pid)s``).
CONTESTED = """
WITH claim AS (SELECT s.animana_id, s.name, s.microchip, row_to_json(s)::text AS raw
                 FROM {staging} s WHERE s.microchip IS NOT NULL),
held AS (SELECT p.id, p.animana_id, p.name, p.microchip FROM patient p
          WHERE p.practice_id = %(pid)s AND p.deleted_at IS NULL AND p.microchip IN (SELECT microchip FROM claim)
            AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.animana_id = p.animana_id
                             AND s.microchip IS DISTINCT FROM p.microchip)),
contested AS (SELECT microchip FROM claim GROUP BY microchip HAVING count(*) > 1
              UNION SELECT h.microchip FROM held h JOIN claim c ON c.microchip = h.microchip
                                                  AND c.animana_id IS DISTINCT FROM h.animana_id)
SELECT c.microchip, c.animana_id, c.name, NULL::bigint, c.raw FROM claim c
 WHERE c.microchip IN (SELECT microchip FROM contested)
UNION ALL
SELECT h.microchip, h.animana_id, h.name, h.id, NULL FROM held h WHERE h.microchip IN (SELECT microchip FROM contested)
"""


# Patients of the page whose chip goes to another animal of the page: cleared before the upsert gives it there.
RELEASE = """
UPDATE patient p SET microchip = NULL FROM {staging} s
 WHERE p.practice_id = %(pid)s AND p.animana_id = s.animana_id AND p.microchip IS NOT NULL
   AND s.microchip IS DISTINCT FROM p.microchip
   AND EXISTS (SELECT 1 FROM {staging} o WHERE o.microchip = p.microchip)
"""


def keep_chips_unique(cur: psycopg.Cursor, target: LoadTarget, resource: str, staging: Staging) -> None:
    """Before the staged animals are written: clear in them each chip another patient keeps, noting every one,
    and release the chips that move within the page (see the module)."""
    table = sql.Identifier(staging.name)
    cur.execute(sql.SQL(CONTESTED).format(staging=table), params(target))
    by_chip: dict[str, list[ChipHolder]] = defaultdict(list)
    for row in cur.fetchall():
        by_chip[row[0]].append(ChipHolder(*row))
    notes: list[Rejection] = []
    for chip, holders in by_chip.items():
        keeper = _keeper(holders)
        for loser in holders:
            if loser.patient_id is None and loser.animana_id != keeper.animana_id:
                reason = f"microchip {chip} is also on {keeper.describe()}; kept on {keeper.short()}"
                notes.append(Rejection(loser.animana_id, loser.raw or "", reason, note=True))
    if notes:
        cur.execute(
            sql.SQL("UPDATE {} SET microchip = NULL WHERE animana_id = ANY(%(ids)s)").format(table),
            {"ids": [n.external_id for n in notes]},
        )
        quarantine_rejections(cur, target, resource, notes)
    cur.execute(sql.SQL(RELEASE).format(staging=table), params(target))


def _keeper(holders: list[ChipHolder]) -> ChipHolder:
    """The patient here holding the chip, else the page's animal with the lowest Animana id (ids are numbers)."""
    here = [h for h in holders if h.patient_id is not None]
    if here:
        return here[0]  # at most one: the unique index
    return min(holders, key=lambda h: (len(h.animana_id or ""), h.animana_id or ""))
