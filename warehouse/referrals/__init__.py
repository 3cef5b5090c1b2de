"""Referrals between practices: refer a patient (with the owner's consent, for a window of time), let the
practice referred to read the history read-only (every read audited on the referring practice's chain), and
take its findings back into the patient's record. The access itself is granted by the database (migration 0480)."""
