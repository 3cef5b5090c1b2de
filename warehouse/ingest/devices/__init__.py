"""Device results into the record: raw first, then observations, imaging or an inbox entry (architecture §6).

One job per module:

- ``inputs``: the plain input and outcome types (nothing here knows HL7, ASTM or DICOM) and column limits.
- ``raw``: the ``device_message`` row - the raw copy stored first, the content dedup key, the shared columns.
- ``recording``: ``record_outcome`` / ``ingest_raw``, one message at a time, in a SAVEPOINT.
- ``batch``: ``ingest_many``, the common case of a batch set-based, built from the same steps.
- ``matching``: which patient (lab order, microchip, patient id + owner; exact only).
- ``lab_results`` and ``imaging``: what a matched message writes.
- ``inbox``: the messages that wait for a person, resolve, reprocess, the set-aside list.
- ``patient_search``: the exact search a person uses to match them.
"""
