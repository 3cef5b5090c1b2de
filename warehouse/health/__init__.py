"""System health: one check per moving part (database, Animana, sync, write-back, devices, backups), read
through one audited system session per run, for ``vetconnect health``, ``GET /health``, ``GET /metrics`` and the
System health page."""
