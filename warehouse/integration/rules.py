"""Per-field conflict rules: what decides a field VetConnect and Animana both changed since they last agreed.

A rule sees the clash (the field, both values, the value both last agreed on, and both whole rows) and answers
``"local"``, ``"animana"`` or ``None`` — a person decides (the conflict queue). Rules are data: each Animana
resource's `ResourceSpec.conflict_rules` names the rule of each field beside the mapping that reads it; a field
with no rule goes to a person. The settlement records which rule decided, with both values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["local", "animana"]

# An appointment's progress, in order; made at the desk and in the consult room, so the local side knows it.
PROGRESS = ("booked", "checked_in", "in_consult", "done")


@dataclass(frozen=True)
class FieldClash:
    column: str
    local: Any
    animana: Any
    base: Any  # the value both sides last agreed on
    local_row: Mapping[str, Any]
    animana_row: Mapping[str, Any]


@dataclass(frozen=True)
class FieldRule:
    name: str
    decide: Callable[[FieldClash], Side | None]
    description: str  # shown beside an auto-resolved field


def _progress_wins(clash: FieldClash) -> Side | None:
    """A visit's progress made here (checked in, in consult, done) beats Animana still saying ``booked``, and a
    cancellation on one side beats the other side's ``booked``."""
    local, animana = clash.local, clash.animana
    if local in PROGRESS[1:] and animana == "booked":
        return "local"
    if animana in PROGRESS[1:] and local == "booked":
        return "animana"
    if local == "cancelled" and animana == "booked":
        return "local"
    if animana == "cancelled" and local == "booked":
        return "animana"
    return None


def _cancellation_wins(clash: FieldClash) -> Side | None:
    """Both moved the appointment (time or resource) but one side also cancelled it: the cancellation stands, and
    with it the times of the side that cancelled. Moves on both sides without a cancellation: a person."""
    local_cancelled = clash.local_row.get("status") == "cancelled"
    animana_cancelled = clash.animana_row.get("status") == "cancelled"
    if local_cancelled and not animana_cancelled:
        return "local"
    if animana_cancelled and not local_cancelled:
        return "animana"
    return None


def _never_merge(clash: FieldClash) -> Side | None:
    return None


local_progress_wins = FieldRule(
    "local_progress_wins",
    _progress_wins,
    "progress (checked in, in consult, done) or a cancellation beats 'booked'",
)
cancellation_wins = FieldRule(
    "cancellation_wins", _cancellation_wins, "a cancellation beats a change of time"
)
never_merge = FieldRule("never_merge", _never_merge, "clinical notes are never merged automatically")

RuleBook = Mapping[str, FieldRule]
"""A table's rules by column."""
