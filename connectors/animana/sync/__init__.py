"""The Animana sync service: Animana pages → specs' mappings → warehouse loaders, per practice, resumable.

`links` (which practice mirrors which Animana practice; linking one), `prefetch` (fetching and mapping ahead of the
loader), `practice` (one practice, batch by batch, each batch with its cursor in one transaction), `processes`
(practices in worker processes), `service` (`sync_all`, `drift`, `integrity`: what the CLI, the demo and the Dagster
assets call). None of it imports Dagster.
"""
