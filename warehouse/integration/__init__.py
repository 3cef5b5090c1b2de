"""Two-way Animana (architecture §5): per practice and module a mode decides where a write goes; local changes to
mirrored rows are captured by triggers into an outbox (migration 0380) that a dispatcher writes back; Animana's
changes to rows with an unacknowledged local change are held and settled per field, the rest queued as
conflicts a person resolves."""
