"""Writing VetConnect's local changes back to Animana: one outbox entry → one HTTP write (`sender`), the
dispatcher that pushes a practice's outbox (`dispatcher`), the ids a write points at (`refs`), and the
synchronous write-through of `animana` mode (`write_through`)."""
