"""Two-way Animana (architecture §5): per practice and module a mode decides where a write goes; local changes to
mirrored rows are captured by triggers into an outbox (migration 0380) that a dispatcher writes back; Animana's
changes to rows with an unacknowledged local change are taken by the loader when they leave the columns being sent
alone (migration 0620), otherwise held and settled per field, what no rule decides queued as a conflict a person
resolves."""
