"""Loading rows from external systems into the system of record (`animana`: the Animana mirror)."""
