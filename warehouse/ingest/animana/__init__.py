"""Bulk loading of the Animana mirror into the system of record.

The loader takes *plain rows* (it never imports a connector) for one practice and one source resource, with the
resource's `load.ResourceLoad` (handed in by the caller: the connector's resource spec), and, in the caller's
transaction (a ``tenant_session`` for that practice):

1. ``COPY``s them into a TEMP staging table (``ON COMMIT DELETE ROWS``, created once per connection);
2. resolves the source's foreign ids to warehouse ids by joins on ``animana_id`` and upserts with
   ``INSERT … SELECT … ON CONFLICT (practice_id, animana_id) DO UPDATE … WHERE row IS DISTINCT FROM`` — so an
   unchanged row is not rewritten and the counts say what really changed; a batch none of whose keys exists yet
   (a first load) takes a plain ``INSERT`` with the upsert as fallback (`statements.write`), same outcome, less
   work;
3. quarantines rows whose required parent is unknown (and, if the set-based statement hits a constraint, falls
   back to row-by-row savepoints and quarantines exactly the offending rows with the database's message);
4. applies tombstones (``deleted_at`` where the table has it, otherwise delete; an appointment is flagged
   cancelled with ``DELETED_UPSTREAM`` so the slot frees and history that points at it stays valid);
5. advances the ``sync_state`` cursor and the ``sync_run`` counts — in the same transaction as the rows, so a
   crash at any point either keeps the page with its cursor or neither.

The transaction is marked as Animana writing (``vetconnect.writer``, `load.LOAD_SETTINGS`): the change-capture
triggers of the mirrored tables do not send the sync's rows back to Animana, and an update of a row that has a
local change Animana has not acknowledged is held in ``writeback_incoming`` for settlement instead of reverting
it. Each mirrored row stores the Animana version it agrees with (``animana_version``: the record's
``updated_at`` as the API writes it), part of the upsert's changed test.

Client PII arrives in clear and is encrypted here with the practice's ``FieldCipher``; when a value has not
changed the stored ciphertext is kept (AES-GCM is randomised), so an unchanged client is not an update.

One job per module: `rows` (what the loader takes), `staging` (TEMP tables and COPY), `statements` (upsert and
joins), `quarantine`, `plan` (the declarative `TableLoad` of a simple resource), `handlers` (the bespoke ones),
`tombstones`, `load` (`load_batch` and its row-by-row fallback), `progress` (cursors and runs), `checks` (mirror
counts, quarantine and referential checks).
"""
