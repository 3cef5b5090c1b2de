"""What the generator is asked for: a seed, a practice size, how many years of history, and "now"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .clock import UTC

# 2026-11-02 is a Monday; a fixed default keeps a seed's data identical from one day to the next (tests, benches).
# The demo passes the moment it was first started instead, so its "today" is a working day in progress.
DEFAULT_ANCHOR = dt.datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    relations: int
    appointments_per_day: float
    staff: int
    rooms: int


# small: a few hundred rows per practice (tests); demo: a two-vet practice at work, 15-25 patients per vet-day
# (~150k rows over three years); medium: ~100k rows per practice; large: ~5x medium.
SCALES: dict[str, Scale] = {
    "small": Scale(relations=20, appointments_per_day=0.08, staff=5, rooms=3),
    "demo": Scale(relations=2000, appointments_per_day=28, staff=5, rooms=3),
    "medium": Scale(relations=2700, appointments_per_day=14.5, staff=12, rooms=6),
    "large": Scale(relations=10000, appointments_per_day=52.0, staff=40, rooms=12),
}


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 42
    scale: str = "small"
    history_years: float = 3.0
    anchor: dt.datetime = DEFAULT_ANCHOR

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {sorted(SCALES)}")
        if self.anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")
