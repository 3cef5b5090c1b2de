"""What happens to a practice's roster and reminders between two syncs, for ``POST /_sim/mutate``.

Shifts: a coming shift is changed (starts later, ends earlier or later) or taken off the roster (called in
sick, a day off swapped away), which is a deletion upstream. Reminders: the nightly run sends an open reminder,
the desk cancels one (the client phoned), or one entered by mistake is deleted.

Draws come from their own stream, so asking for these changes leaves what the other mutation counts change
exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import PracticeStore


def change_roster_and_reminders(
    store: PracticeStore, *, shift_changes: int, reminder_changes: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Apply the changes; returns them as the mutate answer lists them (edited / cancelled / deleted)."""
    rng = random.Random(f"mutate-roster:{seed}:{store.practice_id}")
    changed: dict[str, list[dict[str, Any]]] = {"edited": [], "cancelled": [], "deleted": []}
    today = store.high_water()[:10]
    for _ in range(shift_changes):
        coming = [
            record_id
            for record_id in store.live_ids("shifts")
            if str(store.by_id["shifts"][record_id].payload.get("date", "")) >= today
        ]
        if not coming:
            break
        record_id = rng.choice(coming)
        if rng.random() < 0.4:
            store.delete("shifts", record_id)
            changed["deleted"].append({"resource": "shifts", "id": record_id})
        else:
            store.update("shifts", record_id, _moved(rng, store.by_id["shifts"][record_id].payload))
            changed["edited"].append({"resource": "shifts", "id": record_id})
    for _ in range(reminder_changes):
        ids = store.live_ids("reminders")
        open_ids = [i for i in ids if store.by_id["reminders"][i].payload.get("status") == "open"]
        choice = rng.random()
        if open_ids and choice < 0.5:
            record_id = rng.choice(open_ids)
            stamp = store.high_water()
            store.update("reminders", record_id, {"status": "sent", "sent_at": stamp})
            changed["edited"].append({"resource": "reminders", "id": record_id})
        elif open_ids and choice < 0.8:
            record_id = rng.choice(open_ids)
            store.update("reminders", record_id, {"status": "cancelled"})
            changed["cancelled"].append({"resource": "reminders", "id": record_id})
        elif ids:
            record_id = rng.choice(ids)
            store.delete("reminders", record_id)
            changed["deleted"].append({"resource": "reminders", "id": record_id})
    return changed


def _moved(rng: random.Random, shift: dict[str, Any]) -> dict[str, str]:
    """The shift starts an hour later, ends an hour earlier, or runs an hour longer."""
    start, end = dt.datetime.fromisoformat(shift["start"]), dt.datetime.fromisoformat(shift["end"])
    hour = dt.timedelta(hours=1)
    choice = rng.randrange(3)
    if choice == 0 and end - start > 2 * hour:
        start += hour
    elif choice == 1 and end - start > 2 * hour:
        end -= hour
    else:
        end += hour
    return {"start": start.isoformat(), "end": end.isoformat()}
