"""Baselines reported beside every next-action model: the most frequent next activity, and first-order Markov
(the most frequent successor of the last activity, falling back to the most frequent overall)."""

from __future__ import annotations

from collections import Counter, defaultdict

import polars as pl


class MostFrequentBaseline:
    def fit(self, prefixes: pl.DataFrame) -> MostFrequentBaseline:
        self.ranking = [
            a for a, _ in sorted(Counter(prefixes["target"].to_list()).items(), key=lambda x: (-x[1], x[0]))
        ]
        return self

    def top_k(self, last_activities: list[str], k: int = 3) -> list[list[str]]:
        return [self.ranking[:k]] * len(last_activities)


class MarkovBaseline:
    def fit(self, prefixes: pl.DataFrame, last_activity: pl.Series) -> MarkovBaseline:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for last, nxt in zip(last_activity.to_list(), prefixes["target"].to_list(), strict=True):
            counts[last][nxt] += 1
        self.fallback = MostFrequentBaseline().fit(prefixes).ranking
        self.table = {
            last: _fill([a for a, _ in sorted(c.items(), key=lambda x: (-x[1], x[0]))], self.fallback)
            for last, c in counts.items()
        }
        return self

    def top_k(self, last_activities: list[str], k: int = 3) -> list[list[str]]:
        return [self.table.get(a, self.fallback)[:k] for a in last_activities]


def _fill(ranking: list[str], fallback: list[str]) -> list[str]:
    return ranking + [a for a in fallback if a not in ranking][:5]
