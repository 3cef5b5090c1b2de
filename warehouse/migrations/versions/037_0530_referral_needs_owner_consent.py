"""A referral grants access only while its patient's primary owner consents to sharing for referrals.

Migration 0480 made the grant (``referred_patients()``) depend on the referral's own consent record; migration
0460 made ``client_consent`` the one record of a client's consents. Withdrawing the owner's consent to
``referral_sharing`` on the client card now ends the access of every referral of their animals at the next
statement, as revoking a referral does.

Revision ID: 0530
Revises: 0460
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0530"
down_revision: str | Sequence[str] | None = "0460"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERRED_PATIENTS = """
CREATE OR REPLACE FUNCTION public.referred_patients()
 RETURNS TABLE(practice_id bigint, patient_id bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT r.practice_id, r.patient_id FROM referral r
   WHERE r.to_practice_id = ANY (app_practice_ids())
     AND r.status IN ('open', 'accepted') AND r.revoked_at IS NULL AND r.consent_withdrawn_at IS NULL
     AND now() >= r.valid_from AND now() < r.valid_until
     AND client_has_consent(r.practice_id,
           (SELECT cp.client_id FROM client_patient cp WHERE cp.practice_id = r.practice_id
               AND cp.patient_id = r.patient_id ORDER BY cp.is_primary DESC, cp.client_id LIMIT 1),
           'referral_sharing')
$function$
"""

PREVIOUS = """
CREATE OR REPLACE FUNCTION public.referred_patients()
 RETURNS TABLE(practice_id bigint, patient_id bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT r.practice_id, r.patient_id FROM referral r
   WHERE r.to_practice_id = ANY (app_practice_ids())
     AND r.status IN ('open', 'accepted') AND r.revoked_at IS NULL AND r.consent_withdrawn_at IS NULL
     AND now() >= r.valid_from AND now() < r.valid_until
$function$
"""


def upgrade() -> None:
    op.execute(REFERRED_PATIENTS)


def downgrade() -> None:
    op.execute(PREVIOUS)
