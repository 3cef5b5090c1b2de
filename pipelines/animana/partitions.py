"""Animana assets are partitioned by practice (the practice code), added dynamically as practices are linked."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

animana_practices = DynamicPartitionsDefinition(name="animana_practices")
