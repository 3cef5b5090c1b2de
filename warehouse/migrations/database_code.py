"""Today's database code: every SQL function, trigger and row-level-security policy as the head migration leaves
it, grouped by domain. Read this to know what the database does; the migrations only say how it got there.

- Functions are written as ``pg_get_functiondef`` prints them (so each one can be pasted into a migration as it
  is), spaced for reading: the check compares them with runs of whitespace collapsed.
- Policies and triggers are written once per kind, with the tables that have them, in PostgreSQL's own words
  (``pg_policies``, ``pg_get_triggerdef``).

Nothing imports this module to build the database: each migration keeps the SQL it ran (``README.md``).
``tests/warehouse/test_database_code.py`` migrates an empty database to head and checks that it holds exactly
what is written here, no more and no less; a migration that changes a function, trigger or policy changes this
module in the same commit.
"""

from __future__ import annotations

from typing import NamedTuple


class Policy(NamedTuple):
    """A row-level-security policy (permissive, for every role) as ``pg_policies`` shows it."""

    name: str
    command: str  # ALL, SELECT, INSERT, UPDATE or DELETE
    using: str | None
    with_check: str | None


# --- Access context -------------------------------------------------------------------------------------------
# The application sets ``app.user_id`` and ``app.practice_ids`` per transaction (set_config(..., true)); unset or
# empty is the empty set, so every policy fails closed. Franchises are derived from the practices inside the
# database, so they cannot be spoofed separately.

APP_PRACTICE_IDS = """
CREATE OR REPLACE FUNCTION public.app_practice_ids()
 RETURNS bigint[]
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  SELECT coalesce(string_to_array(nullif(current_setting('app.practice_ids', true), ''), ',')::bigint[],
                  '{}'::bigint[])
$function$
"""

APP_USER_ID = """
CREATE OR REPLACE FUNCTION public.app_user_id()
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  SELECT nullif(current_setting('app.user_id', true), '')::bigint
$function$
"""

# The sign-in session (``user_session.id``) of the transaction, for the audit log (0490).
APP_SESSION_ID = """
CREATE OR REPLACE FUNCTION public.app_session_id()
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  SELECT nullif(current_setting('app.session_id', true), '')::bigint
$function$
"""

APP_FRANCHISE_IDS = """
CREATE OR REPLACE FUNCTION public.app_franchise_ids()
 RETURNS bigint[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT coalesce(array_agg(DISTINCT franchise_id), '{}'::bigint[]) FROM tenant WHERE id = ANY (app_practice_ids())
$function$
"""

# Practice-owned rows: visible and writable only for the practices of the access context.
PRACTICE_TABLES = (
    "practice_module_mode", "tenant_data_key", "client", "patient", "client_patient", "weight_measurement",
    "resource", "appointment_type_override", "staff_shift", "appointment", "visit", "diagnosis",
    "vaccine_protocol_override", "vaccination", "prescription", "lab_order", "lab_observation", "document",
    "reminder_template_override", "reminder", "product_price_override", "invoice", "invoice_line", "payment",
    "event", "sync_state", "audit_log", "audit_chain_head", "device_message", "imaging_study",
    "document_content", "sync_run", "ingest_quarantine", "mart_practice_day", "mart_staff_day",
    "mart_appointment_type_day", "mart_hour_day", "mart_diagnosis_day", "mart_practice_month",
    "mart_open_invoice", "mart_dirty_day", "suggestion_log", "search_term", "search_word",
    "invoice_line_removal", "invoice_series", "mart_refresh", "writeback_outbox", "writeback_incoming",
    "writeback_conflict",
    "record_merge",
    "practice_breed",
    "lab_destination",
    "referral", "referral_report",
    "client_consent",
    "client_erasure", "audit_redaction",
    "message_outbox",
    "writeback_handed",
)  # fmt: skip
TENANT_ISOLATION = Policy(
    "tenant_isolation", "ALL",
    using="(practice_id = ANY (app_practice_ids()))",
    with_check="(practice_id = ANY (app_practice_ids()))",
)  # fmt: skip

# Franchise-level shared resources: visible and writable for the franchises of the allowed practices.
FRANCHISE_TABLES = (
    "appointment_type", "vaccine_protocol", "reminder_template", "product", "shared_resource_change",
    "model_artifact", "diagnosis_code",
)  # fmt: skip
FRANCHISE_ISOLATION = Policy(
    "franchise_isolation", "ALL",
    using="(franchise_id = ANY (app_franchise_ids()))",
    with_check="(franchise_id = ANY (app_franchise_ids()))",
)  # fmt: skip

# Global tables: a user sees the tenants of their access context, their colleagues and their own account;
# the practice's manager updates the details its invoices carry (which columns: a column grant).
VISIBLE_TENANTS = Policy(
    "visible_tenants", "SELECT",
    using="((COALESCE(practice_id, id) = ANY (app_practice_ids())) OR (id = ANY (app_franchise_ids())))",
    with_check=None,
)  # fmt: skip
PRACTICE_DETAILS = Policy(
    "practice_details", "UPDATE",
    using="(((kind)::text = 'practice'::text) AND (id = ANY (app_practice_ids())))",
    with_check="(((kind)::text = 'practice'::text) AND (id = ANY (app_practice_ids())))",
)  # fmt: skip
VISIBLE_MEMBERSHIPS = Policy(
    "visible_memberships", "SELECT",
    using="((user_id = app_user_id()) OR (tenant_id IN ( SELECT tenant.id FROM tenant)))",
    with_check=None,
)  # fmt: skip
COLLEAGUES = Policy(
    "colleagues", "SELECT",
    using="((id = app_user_id()) OR (id IN ( SELECT membership.user_id FROM membership)))",
    with_check=None,
)  # fmt: skip
OWN_ACCOUNT = Policy("own_account", "UPDATE", using="(id = app_user_id())", with_check="(id = app_user_id())")
# Reference data every user reads (the seeded breeds); only migrations write it (no write grant).
REFERENCE_DATA = Policy("reference_data", "SELECT", using="true", with_check=None)


# --- Practices: onboarding and offboarding --------------------------------------------------------------------
# Onboarding creates the practice's partition of every fact table partitioned by practice (found in the catalogue,
# so a table added later is onboarded without a change here) and starts its audit chain. Offboarding detaches the
# partitions nothing references by foreign key and takes the practice out of every access set.

PRACTICE_PARTITIONED_TABLES = """
CREATE OR REPLACE FUNCTION public.practice_partitioned_tables()
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
  SELECT c.relname::text
  FROM pg_partitioned_table pt
  JOIN pg_class c ON c.oid = pt.partrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
  WHERE n.nspname = 'public' AND NOT c.relispartition AND pt.partstrat = 'l' AND a.attname = 'practice_id'
  ORDER BY 1
$function$
"""

ONBOARD_PRACTICE = """
CREATE OR REPLACE FUNCTION public.onboard_practice(p_practice bigint)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  parent text;
  child text;
BEGIN
  IF NOT EXISTS (SELECT FROM tenant WHERE id = p_practice AND kind = 'practice') THEN
    RAISE EXCEPTION 'tenant % is not a practice', p_practice;
  END IF;
  FOR parent IN SELECT practice_partitioned_tables() LOOP
    child := parent || '_p' || p_practice;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES IN (%L)', child, parent, p_practice);
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', child);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', child);
  END LOOP;
  INSERT INTO audit_chain_head (practice_id, seq, hash) VALUES (p_practice, 0, repeat('0', 64))
  ON CONFLICT (practice_id) DO NOTHING;
END $function$
"""

OFFBOARD_PRACTICE = """
CREATE OR REPLACE FUNCTION public.offboard_practice(p_practice bigint)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  parent text;
BEGIN
  FOR parent IN
    SELECT t FROM practice_partitioned_tables() t
    WHERE NOT EXISTS (SELECT FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = t::regclass)
  LOOP
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, parent || '_p' || p_practice);
    RETURN NEXT parent || '_p' || p_practice;
  END LOOP;
  UPDATE tenant SET offboarded_at = now() WHERE id = p_practice;
END $function$
"""


# After a sync, the planner's statistics of what a bulk change left behind (0570, 0590): the practice's partitions
# and the tenant tables never analysed or changed by more than their size (+ autovacuum's 50 rows) since; ordinary
# growth is left to autovacuum. SECURITY DEFINER: only the owner may ANALYZE; it answers only for a practice of the
# caller's access context.

REFRESH_PRACTICE_STATISTICS = """
CREATE OR REPLACE FUNCTION public.refresh_practice_statistics(p_practice bigint)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  stale text;
BEGIN
  IF NOT p_practice = ANY (app_practice_ids()) THEN
    RAISE EXCEPTION 'practice % is not in the caller''s access context', p_practice USING ERRCODE = '42501';
  END IF;
  FOR stale IN
    SELECT c.relname::text
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'practice_id' AND NOT a.attisdropped
    LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
    LEFT JOIN pg_class parent ON parent.oid = i.inhparent
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE n.nspname = 'public' AND c.relkind = 'r'
      AND (NOT c.relispartition OR c.relname = parent.relname || '_p' || p_practice)
      AND (c.reltuples < 0
           OR coalesce(s.n_mod_since_analyze, 0) > current_setting('autovacuum_analyze_threshold')::bigint
                + c.reltuples)
    ORDER BY 1
  LOOP
    EXECUTE format('ANALYZE %I', stale);
    RETURN NEXT stale;
  END LOOP;
END $function$
"""


# --- Audit ----------------------------------------------------------------------------------------------------
# An append-only log per practice, hash-chained: each entry's hash covers the previous hash and the entry's
# canonical text (with the sign-in session it came from, when there was one: 0490). Writes to practice tables are audited per statement (one entry per practice, with every row
# id); the practice details of ``tenant`` (a global table) per row, with old -> new of each changed column.

AUDIT_PAYLOAD = """
CREATE OR REPLACE FUNCTION public.audit_payload(p_practice bigint, p_seq bigint, p_at timestamp with time zone,
 p_actor bigint, p_action text, p_entity text, p_ids bigint[], p_detail jsonb, p_session bigint)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT (jsonb_build_object(
    'practice_id', p_practice, 'seq', p_seq,
    'at', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'actor', p_actor, 'action', p_action, 'entity', p_entity, 'ids', p_ids, 'detail', p_detail)
    || CASE WHEN p_session IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('session', p_session) END)::text
$function$
"""

# The chain head row is locked FOR UPDATE: concurrent writers of one practice wait for each other until they
# commit, the price of a gap-free, verifiable chain.
AUDIT_CHAIN = """
CREATE OR REPLACE FUNCTION public.audit_chain()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  head record;
BEGIN
  SELECT seq, hash INTO head FROM audit_chain_head WHERE practice_id = NEW.practice_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'practice % is not onboarded (no audit chain)', NEW.practice_id;
  END IF;
  NEW.seq := head.seq + 1;
  NEW.occurred_at := clock_timestamp();
  NEW.actor_user_id := coalesce(NEW.actor_user_id, app_user_id());
  NEW.session_id := coalesce(NEW.session_id, app_session_id());
  NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
  NEW.prev_hash := head.hash;
  NEW.hash := encode(sha256(convert_to(NEW.prev_hash || audit_payload(
      NEW.practice_id, NEW.seq, NEW.occurred_at, NEW.actor_user_id, NEW.action, NEW.entity,
      NEW.entity_ids, NEW.detail, NEW.session_id), 'UTF8')), 'hex');
  UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE practice_id = NEW.practice_id;
  RETURN NEW;
END $function$
"""

AUDIT_STATEMENT = """
CREATE OR REPLACE FUNCTION public.audit_statement()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  has_id boolean;
BEGIN
  SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = TG_RELID AND attname = 'id' AND NOT attisdropped)
    INTO has_id;
  EXECUTE format(
    'INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail)
     SELECT practice_id, %L, %L, %s, jsonb_build_object(''rows'', count(*))
     FROM changed_rows GROUP BY practice_id',
    lower(TG_OP), TG_TABLE_NAME, CASE WHEN has_id THEN 'array_agg(id ORDER BY id)' ELSE 'NULL' END);
  RETURN NULL;
END $function$
"""

# Who and when come from the chain's own trigger; prev_hash and hash are filled in there too.
AUDIT_PRACTICE_DETAILS = """
CREATE OR REPLACE FUNCTION public.audit_practice_details()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  changes jsonb :=
    CASE WHEN OLD.address IS DISTINCT FROM NEW.address THEN
      jsonb_build_object('address', jsonb_build_object('old', OLD.address, 'new', NEW.address)) ELSE '{}'::jsonb END ||
    CASE WHEN OLD.postcode IS DISTINCT FROM NEW.postcode THEN
      jsonb_build_object('postcode', jsonb_build_object('old', OLD.postcode, 'new', NEW.postcode)) ELSE '{}'::jsonb END ||
    CASE WHEN OLD.city IS DISTINCT FROM NEW.city THEN
      jsonb_build_object('city', jsonb_build_object('old', OLD.city, 'new', NEW.city)) ELSE '{}'::jsonb END ||
    CASE WHEN OLD.vat_number IS DISTINCT FROM NEW.vat_number THEN
      jsonb_build_object('vat_number', jsonb_build_object('old', OLD.vat_number, 'new', NEW.vat_number))
      ELSE '{}'::jsonb END ||
    CASE WHEN OLD.kvk_number IS DISTINCT FROM NEW.kvk_number THEN
      jsonb_build_object('kvk_number', jsonb_build_object('old', OLD.kvk_number, 'new', NEW.kvk_number))
      ELSE '{}'::jsonb END ||
    CASE WHEN OLD.iban IS DISTINCT FROM NEW.iban THEN
      jsonb_build_object('iban', jsonb_build_object('old', OLD.iban, 'new', NEW.iban)) ELSE '{}'::jsonb END;
BEGIN
  IF changes <> '{}'::jsonb THEN
    INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash)
    VALUES (NEW.id, 'update', 'practice_details', ARRAY[NEW.id], jsonb_build_object('changes', changes),
            '', '');
  END IF;
  RETURN NULL;
END $function$
"""

# Practice tables audited per statement: all but the operational logs (event, sync_state, device_message,
# sync_run), the marts, the search index and the audit tables themselves.
AUDITED_TABLES = (
    "practice_module_mode", "tenant_data_key", "client", "patient", "client_patient", "weight_measurement",
    "resource", "appointment_type_override", "staff_shift", "appointment", "visit", "diagnosis",
    "vaccine_protocol_override", "vaccination", "prescription", "lab_order", "lab_observation", "document",
    "reminder_template_override", "reminder", "product_price_override", "invoice", "invoice_line", "payment",
    "imaging_study", "document_content", "ingest_quarantine", "invoice_line_removal", "invoice_series",
    "practice_breed",
    "lab_destination",
    "referral", "referral_report",
    "client_consent",
)  # fmt: skip
AUDIT_STATEMENT_TRIGGERS = (
    "CREATE TRIGGER audit_insert AFTER INSERT ON public.{table} REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
    "CREATE TRIGGER audit_update AFTER UPDATE ON public.{table} REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
    "CREATE TRIGGER audit_delete AFTER DELETE ON public.{table} REFERENCING OLD TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
)
AUDIT_CHAIN_TRIGGER = (
    "CREATE TRIGGER audit_chain BEFORE INSERT ON public.audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain()"
)
AUDIT_PRACTICE_DETAILS_TRIGGER = (
    "CREATE TRIGGER audit_practice_details AFTER UPDATE OF address, postcode, city, vat_number, kvk_number, iban "
    "ON public.tenant FOR EACH ROW WHEN (((new.kind)::text = 'practice'::text)) "
    "EXECUTE FUNCTION audit_practice_details()"
)


# --- Shared resources: version history ------------------------------------------------------------------------
# Who changed a franchise's shared resource or a practice's override of it, when, old -> new. The row key is the
# row's key columns (the ``*_id`` columns below), so it names the row across versions.

RECORD_SHARED_CHANGE = """
CREATE OR REPLACE FUNCTION public.record_shared_change()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  any_row jsonb := coalesce(new_row, old_row);
BEGIN
  INSERT INTO shared_resource_change (franchise_id, practice_id, table_name, operation, row_key, changed_by, old, new)
  VALUES ((any_row ->> 'franchise_id')::bigint, (any_row ->> 'practice_id')::bigint, TG_TABLE_NAME, TG_OP,
          any_row - ARRAY(SELECT jsonb_object_keys(any_row)
                          EXCEPT SELECT unnest(ARRAY['franchise_id', 'practice_id', 'id',
                                  'appointment_type_id', 'protocol_id', 'template_id', 'product_id'])),
          app_user_id(), old_row, new_row);
  RETURN NULL;
END $function$
"""

VERSIONED_TABLES = (
    "appointment_type", "appointment_type_override", "vaccine_protocol", "vaccine_protocol_override",
    "reminder_template", "reminder_template_override", "product", "product_price_override",
)  # fmt: skip
VERSION_CHANGES_TRIGGER = (
    "CREATE TRIGGER version_changes AFTER INSERT OR DELETE OR UPDATE ON public.{table} "
    "FOR EACH ROW EXECUTE FUNCTION record_shared_change()"
)


# --- Sign-in --------------------------------------------------------------------------------------------------
# Server-side sessions: the browser holds a random token, the database its SHA-256. ``touch_user_session``
# validates a session on every page load (revoked, absolute and idle expiry by the database clock) and is the
# only way the application role finds a session by its hash. A change of a user's memberships or deactivating
# the account revokes their sessions. A user reads their own password hash and TOTP secret only through
# ``own_credentials()``; colleagues' are not selectable (column grants).

TOUCH_USER_SESSION = """
CREATE OR REPLACE FUNCTION public.touch_user_session(p_token_sha256 bytea)
 RETURNS TABLE(user_id bigint, session_id bigint, ended text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  s user_session%ROWTYPE;
BEGIN
  SELECT * INTO s FROM user_session WHERE token_sha256 = p_token_sha256 FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, NULL::bigint, 'unknown'::text;
    RETURN;
  END IF;
  IF s.revoked_at IS NULL THEN
    IF now() >= s.expires_at THEN
      s.revoked_reason := 'absolute timeout';
    ELSIF now() - s.last_seen_at > s.idle_timeout THEN
      s.revoked_reason := 'idle timeout';
    END IF;
    IF s.revoked_reason IS NOT NULL THEN
      s.revoked_at := now();
      UPDATE user_session SET revoked_at = s.revoked_at, revoked_reason = s.revoked_reason WHERE id = s.id;
    ELSIF now() - s.last_seen_at > interval '30 seconds' THEN
      UPDATE user_session SET last_seen_at = now() WHERE id = s.id;
    END IF;
  END IF;
  RETURN QUERY SELECT s.user_id, s.id,
    CASE WHEN s.revoked_at IS NULL THEN NULL ELSE coalesce(s.revoked_reason, 'revoked')::text END;
END $function$
"""

REVOKE_SESSIONS_OF_CHANGED_USER = """
CREATE OR REPLACE FUNCTION public.revoke_sessions_of_changed_user()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
BEGIN
  IF TG_TABLE_NAME = 'membership' THEN
    UPDATE user_session SET revoked_at = now(), revoked_reason = 'roles changed'
    WHERE user_session.user_id = coalesce(NEW.user_id, OLD.user_id) AND revoked_at IS NULL;
  ELSIF NOT NEW.is_active AND OLD.is_active THEN
    UPDATE user_session SET revoked_at = now(), revoked_reason = 'account deactivated'
    WHERE user_session.user_id = NEW.id AND revoked_at IS NULL;
  END IF;
  RETURN NULL;
END $function$
"""

OWN_CREDENTIALS = """
CREATE OR REPLACE FUNCTION public.own_credentials()
 RETURNS TABLE(password_hash text, totp_secret_enc bytea)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT u.password_hash, u.totp_secret_enc FROM app_user u WHERE u.id = app_user_id()
$function$
"""

REVOKE_SESSIONS_TRIGGERS = (
    "CREATE TRIGGER revoke_sessions AFTER INSERT OR DELETE OR UPDATE ON public.membership "
    "FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_changed_user()",
    "CREATE TRIGGER revoke_sessions AFTER UPDATE OF is_active ON public.app_user "
    "FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_changed_user()",
)
OWN_SESSIONS = Policy("own_sessions", "SELECT", using="(user_id = app_user_id())", with_check=None)
END_OWN_SESSIONS = Policy(
    "end_own_sessions", "UPDATE", using="(user_id = app_user_id())", with_check="(user_id = app_user_id())"
)
OWN_IDENTITIES = Policy("own_identities", "SELECT", using="(user_id = app_user_id())", with_check=None)


# --- Search ---------------------------------------------------------------------------------------------------
# One row per word (``search_term``) for client names, postcodes and patient names, kept by statement triggers
# with transition tables; each practice's distinct name words (``search_word``) and the warehouse-wide typo
# vocabulary (``search_vocabulary``, readable only through ``search_similar_words``, which keeps the words the
# caller's practices have). ``search_reindex(practice)`` rebuilds one practice. Invoice numbers are searched in
# ``invoice.search_number`` itself (a generated column), not here.

SEARCH_WORDS = """
CREATE OR REPLACE FUNCTION public.search_words(value text)
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT DISTINCT w.w FROM regexp_split_to_table(lower(search_words.value), '[^[:alnum:]]+'::text) w(w)
 WHERE (w.w <> ''::text))
"""

# The UPDATE branch looks only at the rows whose searched columns changed (``moved``): splitting names into words
# is what the trigger costs, and most updates change none of them (a phone, an address, a status, a version
# stamp) — bench/writeback.py phase 4: 3.4 ms of a 15-client settlement UPDATE, all of it for rows whose words
# stayed. A superset is harmless (an unchanged row's old and new entries cancel out), so ``moved`` holds ids only.
# Old and new entries are each a UNION in parentheses: without them ``a UNION b EXCEPT c UNION d`` reads
# ((a UNION b) EXCEPT c) UNION d, and a client whose postcode changed kept an entry under the old one (until 0610).
# The search triggers plan with nested loops whatever the writer set (the Animana loader turns them off): they
# look a batch's entries up by key (migration 0500). And with generic plans from the first call: ``moved`` is a
# parameter, so by default each connection planned every statement afresh for its first five calls (a 5-client
# UPDATE 3.8 ms instead of 2.1; the sync's and the settlement's connections rarely get past five).
SEARCH_SYNC_CLIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_client()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE changed int; moved bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    SELECT array_agg(o.id) INTO moved FROM old_rows o JOIN new_rows n ON n.practice_id = o.practice_id AND n.id = o.id
     WHERE (o.last_name, o.first_name, o.postcode, o.deleted_at)
           IS DISTINCT FROM (n.last_name, n.first_name, n.postcode, n.deleted_at);
    IF moved IS NULL THEN
      RETURN NULL;
    END IF;

    DELETE FROM search_term t USING ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""

SEARCH_SYNC_PATIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_patient()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE changed int; moved bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    SELECT array_agg(o.id) INTO moved FROM old_rows o JOIN new_rows n ON n.practice_id = o.practice_id AND n.id = o.id
     WHERE (o.name, o.deleted_at) IS DISTINCT FROM (n.name, n.deleted_at);
    IF moved IS NULL THEN
      RETURN NULL;
    END IF;

    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""

SEARCH_REINDEX = """
CREATE OR REPLACE FUNCTION public.search_reindex(p_practice bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE changed int;
BEGIN
  DELETE FROM search_term WHERE practice_id = p_practice;
  DELETE FROM search_word WHERE practice_id = p_practice;

  WITH terms AS MATERIALIZED (
      SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
      FROM (SELECT * FROM "client" WHERE practice_id = p_practice) r
        CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
      WHERE r.deleted_at IS NULL
      UNION
      SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
      FROM (SELECT * FROM "client" WHERE practice_id = p_practice) r
       WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''),
  added AS (
    INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
     WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
  entries AS (
    INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
  SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;

  WITH terms AS MATERIALIZED (
      SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
      FROM (SELECT * FROM "patient" WHERE practice_id = p_practice) r
        CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
      WHERE r.deleted_at IS NULL),
  added AS (
    INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
     WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
  entries AS (
    INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
  SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
END $function$
"""

# The vocabulary has no unique key on purpose (concurrent syncs adding the same new word never wait for each
# other); duplicates are harmless and ``search_vocabulary_add`` skips words already committed.
SEARCH_VOCABULARY_ADD = """
CREATE OR REPLACE FUNCTION public.search_vocabulary_add(p_kinds text[], p_words text[])
 RETURNS integer
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  WITH added AS (
    INSERT INTO search_vocabulary (kind, word)
    SELECT DISTINCT n.kind, n.word FROM unnest(p_kinds, p_words) AS n(kind, word)
     WHERE n.kind IN ('client', 'patient')
       AND NOT EXISTS (SELECT FROM search_vocabulary v WHERE v.kind = n.kind AND v.word = n.word)
    RETURNING 1)
  SELECT count(*)::int FROM added
$function$
"""

SEARCH_VOCABULARY_FORGET = """
CREATE OR REPLACE FUNCTION public.search_vocabulary_forget(p_kinds text[], p_words text[])
 RETURNS integer
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  WITH gone AS (
    DELETE FROM search_vocabulary v USING unnest(p_kinds, p_words) AS g(kind, word)
     WHERE v.kind = g.kind AND v.word = g.word
       -- A primary-key probe per practice: search_word has no index that starts with the word.
       AND NOT EXISTS (SELECT FROM tenant t JOIN search_word w ON w.practice_id = t.id
                        WHERE t.kind = 'practice' AND w.kind = g.kind AND w.word = g.word)
    RETURNING 1)
  SELECT count(*)::int FROM gone
$function$
"""

# Words similar to p_word (above the caller's pg_trgm.word_similarity_threshold) that occur in one of the
# caller's practices, best first.
SEARCH_SIMILAR_WORDS = """
CREATE OR REPLACE FUNCTION public.search_similar_words(p_kind text, p_word text, p_limit integer)
 RETURNS TABLE(word text, score real)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT v.word, v.score
    FROM (SELECT DISTINCT v.word, word_similarity(p_word, v.word) AS score FROM search_vocabulary v
           WHERE p_word <% v.word AND v.kind = p_kind) v
   WHERE EXISTS (SELECT FROM search_word w
                  WHERE w.practice_id = ANY (app_practice_ids()) AND w.kind = p_kind AND w.word = v.word)
   ORDER BY v.score DESC, v.word
   LIMIT p_limit
$function$
"""

# An UPDATE made while ``vetconnect.bookkeeping`` is on (the write-back's stamp of Animana's id and version,
# `outbox.mark_all_sent`, migration 0560) changes no column the index reads: its trigger skips it.
SEARCH_INDEXED_TABLES = ("client", "patient")
SEARCH_SYNC_TRIGGERS = (
    "CREATE TRIGGER search_sync_insert AFTER INSERT ON public.{table} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}()",
    "CREATE TRIGGER search_sync_update AFTER UPDATE ON public.{table} REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT WHEN ((current_setting('vetconnect.bookkeeping'::text, true) IS DISTINCT "
    "FROM 'on'::text)) EXECUTE FUNCTION search_sync_{table}()",
    "CREATE TRIGGER search_sync_delete AFTER DELETE ON public.{table} REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}()",
)
# pg_trgm's word-similarity operators, marked LEAKPROOF so that under RLS a trigram condition can use an index
# (they compute a similarity from their arguments only, so they leak nothing about rows a policy hides).
LEAKPROOF_EXTENSION_FUNCTIONS = ("word_similarity_commutator_op(text,text)", "word_similarity_op(text,text)")


# --- Marts: the change queue ----------------------------------------------------------------------------------
# Writes to the record mark the practice-days whose marts must be recomputed (``mart_dirty_day``), per statement:
# each function reduces the transition table to its distinct inputs first (the practice's time zone once, the
# distinct days) and expands only those. Local days follow the practice's time zone. A vaccination marks its due
# day and the 61 days around the day it was given (compliance counts boosters up to 30 days either side); payments
# and ownership links change practice-level measures, so they mark today.

MART_LOCAL_DAY = """
CREATE OR REPLACE FUNCTION public.mart_local_day(p_practice bigint, p_at timestamp with time zone)
 RETURNS date
 LANGUAGE sql
 STABLE
AS $function$
  SELECT (p_at AT TIME ZONE coalesce((SELECT timezone FROM tenant WHERE id = p_practice), 'Europe/Amsterdam'))::date
$function$
"""

MART_DIRTY_APPOINTMENT = """
CREATE OR REPLACE FUNCTION public.mart_dirty_appointment()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.starts_at AT TIME ZONE z.tz)::date FROM new_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM new_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.starts_at AT TIME ZONE z.tz)::date FROM old_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM old_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_VISIT = """
CREATE OR REPLACE FUNCTION public.mart_dirty_visit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.started_at AT TIME ZONE z.tz)::date FROM new_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM new_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.started_at AT TIME ZONE z.tz)::date FROM old_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM old_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_STAFF_SHIFT = """
CREATE OR REPLACE FUNCTION public.mart_dirty_staff_shift()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.starts_at AT TIME ZONE z.tz)::date FROM new_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM new_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.starts_at AT TIME ZONE z.tz)::date FROM old_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM old_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_DIAGNOSIS = """
CREATE OR REPLACE FUNCTION public.mart_dirty_diagnosis()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.diagnosed_at AT TIME ZONE z.tz)::date FROM new_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM new_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT r.practice_id, (r.diagnosed_at AT TIME ZONE z.tz)::date FROM old_rows r
              JOIN (SELECT p.practice_id, coalesce((SELECT timezone FROM tenant WHERE id = p.practice_id),
                           'Europe/Amsterdam') AS tz
                      FROM (SELECT DISTINCT practice_id FROM old_rows) p) z ON z.practice_id = r.practice_id)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_INVOICE = """
CREATE OR REPLACE FUNCTION public.mart_dirty_invoice()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day FROM (SELECT DISTINCT r.practice_id, r.issued_on FROM new_rows r) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day FROM (SELECT DISTINCT r.practice_id, r.issued_on FROM old_rows r) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_INVOICE_LINE = """
CREATE OR REPLACE FUNCTION public.mart_dirty_invoice_line()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT i.practice_id, i.issued_on FROM invoice i
              JOIN (SELECT DISTINCT practice_id, invoice_id FROM new_rows) r
                ON i.practice_id = r.practice_id AND i.id = r.invoice_id) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT DISTINCT i.practice_id, i.issued_on FROM invoice i
              JOIN (SELECT DISTINCT practice_id, invoice_id FROM old_rows) r
                ON i.practice_id = r.practice_id AND i.id = r.invoice_id) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_PAYMENT = """
CREATE OR REPLACE FUNCTION public.mart_dirty_payment()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT p.practice_id, mart_local_day(p.practice_id, now())
              FROM (SELECT DISTINCT practice_id FROM new_rows OFFSET 0) p) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT p.practice_id, mart_local_day(p.practice_id, now())
              FROM (SELECT DISTINCT practice_id FROM old_rows OFFSET 0) p) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_CLIENT_PATIENT = """
CREATE OR REPLACE FUNCTION public.mart_dirty_client_patient()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT p.practice_id, mart_local_day(p.practice_id, now())
              FROM (SELECT DISTINCT practice_id FROM new_rows OFFSET 0) p) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT p.practice_id, mart_local_day(p.practice_id, now())
              FROM (SELECT DISTINCT practice_id FROM old_rows OFFSET 0) p) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_VACCINATION = """
CREATE OR REPLACE FUNCTION public.mart_dirty_vaccination()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT r.practice_id, r.due_on FROM new_rows r
            UNION
            SELECT g.practice_id, d::date FROM (SELECT DISTINCT practice_id, given_on FROM new_rows) g
             CROSS JOIN LATERAL generate_series(g.given_on - 30, g.given_on + 30, interval '1 day') d)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day
      FROM (SELECT r.practice_id, r.due_on FROM old_rows r
            UNION
            SELECT g.practice_id, d::date FROM (SELECT DISTINCT practice_id, given_on FROM old_rows) g
             CROSS JOIN LATERAL generate_series(g.given_on - 30, g.given_on + 30, interval '1 day') d)
           AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

MART_DIRTY_REMINDER = """
CREATE OR REPLACE FUNCTION public.mart_dirty_reminder()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day FROM (SELECT DISTINCT r.practice_id, r.due_on FROM new_rows r) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO mart_dirty_day (practice_id, day)
    SELECT d.practice_id, d.day FROM (SELECT DISTINCT r.practice_id, r.due_on FROM old_rows r) AS d(practice_id, day)
     WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $function$
"""

# An UPDATE made while ``vetconnect.bookkeeping`` is on (see the search index's triggers) marks no day.
MART_QUEUE_TABLES = (
    "appointment", "visit", "staff_shift", "diagnosis", "invoice", "invoice_line", "payment", "client_patient",
    "vaccination", "reminder",
)  # fmt: skip
MART_QUEUE_TRIGGERS = (
    "CREATE TRIGGER mart_dirty_insert AFTER INSERT ON public.{table} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION mart_dirty_{table}()",
    "CREATE TRIGGER mart_dirty_update AFTER UPDATE ON public.{table} REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT WHEN ((current_setting('vetconnect.bookkeeping'::text, true) IS DISTINCT "
    "FROM 'on'::text)) EXECUTE FUNCTION mart_dirty_{table}()",
    "CREATE TRIGGER mart_dirty_delete AFTER DELETE ON public.{table} REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION mart_dirty_{table}()",
)


# --- Two-way Animana: change capture and held incoming changes -----------------------------------------------
# Who writes is ``vetconnect.writer`` (transaction-local): unset for a local write, ``animana`` for the sync's
# loader, ``writeback`` for what Animana answered (dispatcher, settlement, synchronous gateway). A local write to
# a mirrored row marks it pending and leaves an outbox entry with the changed columns, in the same transaction,
# unless the module is native for the practice. The sync's update of a pending row is held in
# ``writeback_incoming`` instead of applied; ``warehouse.integration.settle`` decides it per field. The trigger
# arguments name the module and the table (a partition's trigger would otherwise see the partition's name).
# An erasure (``vetconnect.erasure = 'on'``, ``warehouse.privacy.erasure``) is captured without its ``base``: the
# values before it are the personal data being erased.

WRITEBACK_CAPTURE = """
CREATE OR REPLACE FUNCTION public.writeback_capture()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  row_now jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
  row_before jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
  bookkeeping text[] := ARRAY['updated_at', 'animana_version', 'writeback_pending'];
  changed jsonb := '{}'::jsonb;
  base jsonb := '{}'::jsonb;
  module_mode text;
BEGIN
  SELECT CASE WHEN t.animana_practice_id IS NULL THEN 'native' ELSE coalesce(m.mode, 'animana') END
    INTO module_mode
    FROM tenant t
    LEFT JOIN practice_module_mode m ON m.practice_id = t.id AND m.module = TG_ARGV[0]
   WHERE t.id = (row_now ->> 'practice_id')::bigint;
  IF module_mode = 'native' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb),
           coalesce(jsonb_object_agg(n.key, row_before -> n.key), '{}'::jsonb)
      INTO changed, base
      FROM jsonb_each(row_now) n
     WHERE n.key <> ALL (bookkeeping) AND n.value IS DISTINCT FROM row_before -> n.key;
    IF changed = '{}'::jsonb THEN
      RETURN NEW;
    END IF;
  ELSIF TG_OP = 'INSERT' THEN
    changed := row_now - bookkeeping;
  ELSE
    base := row_now - ARRAY['updated_at', 'writeback_pending'];
  END IF;
  IF current_setting('vetconnect.erasure', true) = 'on' THEN
    base := '{}'::jsonb;
  END IF;
  INSERT INTO writeback_outbox (practice_id, module, table_name, row_id, operation, changes, base, created_by)
  VALUES ((row_now ->> 'practice_id')::bigint, TG_ARGV[0], TG_ARGV[1], (row_now ->> 'id')::bigint, lower(TG_OP),
          changed, base, app_user_id());
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  NEW.writeback_pending := true;
  RETURN NEW;
END $function$
"""

# The loader's update of a row with a local change Animana has not acknowledged. When Animana changed none of the
# columns the row's open entries are sending (compared with the value both sides last agreed on, the first open
# entry's ``base``, as the settlement compares), its update is taken in the loader's own statement, the local
# values of those columns kept and the row still pending: that is all the settlement would have decided for it, and
# a settlement UPDATE fires the table's audit, search and mart triggers once more (bench/writeback.py phase 4:
# ~4 ms a table, half of what capture and conflict detection added to an incremental sync). Everything else is
# held for the settlement as it came: Animana changed one of those columns (a clash, the same value, or a value of
# ours come back — only the settlement tells them apart), the row has an open conflict, an encrypted column is
# being sent whose values SQL cannot compare (an address, an IBAN; e-mail and phone by their blind index) or whose
# key version Animana's values do not share, or Animana deleted the record.
WRITEBACK_HOLD = """
CREATE OR REPLACE FUNCTION public.writeback_hold()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  animana jsonb;
  local_row jsonb;
  base jsonb := '{}'::jsonb;
  entry record;
BEGIN
  IF TG_OP = 'UPDATE' AND NOT EXISTS (
      SELECT FROM writeback_conflict c
       WHERE c.practice_id = OLD.practice_id AND c.table_name = TG_ARGV[0] AND c.row_id = OLD.id
         AND c.state = 'open') THEN
    FOR entry IN
      SELECT o.changes, o.base FROM writeback_outbox o
       WHERE o.practice_id = OLD.practice_id AND o.table_name = TG_ARGV[0] AND o.row_id = OLD.id
         AND o.state IN ('pending', 'held', 'dead')
       ORDER BY o.id
    LOOP
      -- An earlier entry's base of a column stays: it is the value both sides last agreed on.
      base := coalesce((SELECT jsonb_object_agg(k, coalesce(entry.base -> k, 'null'::jsonb))
                          FROM jsonb_object_keys(entry.changes) k), '{}'::jsonb) || base;
    END LOOP;
    animana := to_jsonb(NEW);
    local_row := to_jsonb(OLD);
    IF base <> '{}'::jsonb
       AND NOT (base ?| ARRAY['email_enc', 'phone_enc', 'address_enc', 'iban_enc']
                AND animana -> 'key_version' IS DISTINCT FROM local_row -> 'key_version')
       AND NOT EXISTS (
         SELECT FROM jsonb_object_keys(base) k
          WHERE CASE
                  WHEN k IN ('address_enc', 'iban_enc') THEN true
                  WHEN k IN ('email_enc', 'phone_enc') THEN
                    NOT base ? replace(k, '_enc', '_bidx')
                    OR animana -> replace(k, '_enc', '_bidx') IS DISTINCT FROM base -> replace(k, '_enc', '_bidx')
                  -- Follow another column (a blind index and key version their ciphertext, cancelled_at the
                  -- status), or are the table's own (a generated column).
                  WHEN k IN ('email_bidx', 'phone_bidx', 'key_version', 'cancelled_at', 'search_number') THEN false
                  ELSE animana -> k IS DISTINCT FROM base -> k
                END) THEN
      NEW := jsonb_populate_record(NEW, (
        SELECT coalesce(jsonb_object_agg(k, local_row -> k), '{}'::jsonb) FROM jsonb_object_keys(base) k
         WHERE k <> 'search_number' AND animana -> k IS DISTINCT FROM local_row -> k));
      IF to_jsonb(NEW) - ARRAY['updated_at', 'writeback_pending']
         = local_row - ARRAY['updated_at', 'writeback_pending'] THEN
        RETURN NULL;  -- what Animana has is what the row holds but for the local change: nothing to write
      END IF;
      NEW.writeback_pending := true;
      RETURN NEW;
    END IF;
  END IF;
  INSERT INTO writeback_incoming (practice_id, table_name, row_id, incoming, animana_version)
  VALUES (OLD.practice_id, TG_ARGV[0], OLD.id,
          CASE WHEN TG_OP = 'DELETE' THEN '{"deleted_in_animana": true}'::jsonb
               ELSE to_jsonb(NEW) - ARRAY['updated_at', 'animana_version', 'writeback_pending'] END,
          CASE WHEN TG_OP = 'DELETE' THEN OLD.animana_version ELSE NEW.animana_version END)
  ON CONFLICT (practice_id, table_name, row_id) DO UPDATE
    SET incoming = EXCLUDED.incoming, animana_version = EXCLUDED.animana_version, received_at = now();
  RETURN NULL;
END $function$
"""

# A superseded entry is never sent or settled again: its hand-over mark (``writeback_handed``, 0580) goes with it,
# whichever way it was superseded — by a settlement (Animana holds all it was sending), a conflict's resolution, or a
# retried dead letter folding later changes (migration 0630; before it, such marks stayed for ever).
WRITEBACK_FORGET_SUPERSEDED = """
CREATE OR REPLACE FUNCTION public.writeback_forget_superseded()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  DELETE FROM writeback_handed WHERE practice_id = NEW.practice_id AND entry_id = NEW.id;
  RETURN NULL;
END $function$
"""
WRITEBACK_FORGET_SUPERSEDED_TRIGGER = (
    "CREATE TRIGGER writeback_forget_superseded AFTER UPDATE OF state ON public.writeback_outbox FOR EACH ROW "
    "WHEN (((new.state)::text = 'superseded'::text)) EXECUTE FUNCTION writeback_forget_superseded()"
)

# Mirrored table → module (``practice_module_mode.module``).
WRITEBACK_TABLES = {
    "client": "clients", "patient": "clients", "appointment": "agenda", "visit": "records",
    "vaccination": "records", "prescription": "records", "invoice": "invoices", "payment": "invoices",
}  # fmt: skip
WRITEBACK_TRIGGERS = tuple(
    trigger.format(table=table, module=module)
    for table, module in WRITEBACK_TABLES.items()
    for trigger in (
        "CREATE TRIGGER writeback_capture BEFORE INSERT OR DELETE OR UPDATE ON public.{table} FOR EACH ROW "
        "WHEN ((COALESCE(current_setting('vetconnect.writer'::text, true), ''::text) <> ALL "
        "(ARRAY['animana'::text, 'writeback'::text]))) EXECUTE FUNCTION writeback_capture('{module}', '{table}')",
        "CREATE TRIGGER writeback_hold BEFORE DELETE OR UPDATE ON public.{table} FOR EACH ROW "
        "WHEN ((old.writeback_pending AND (current_setting('vetconnect.writer'::text, true) = 'animana'::text))) "
        "EXECUTE FUNCTION writeback_hold('{table}')",
    )
)


# --- Coded diagnoses ------------------------------------------------------------------------------------------
# The standard subset of common small-animal VeNom diagnosis terms a franchise's coded list starts with (our own
# codes; a VeNom concept id only where one is vouched for). ``add_franchise`` runs it for a new franchise.

SEED_DIAGNOSIS_CODES = """
CREATE OR REPLACE FUNCTION public.seed_diagnosis_codes(p_franchise bigint)
 RETURNS void
 LANGUAGE sql
AS $function$
  INSERT INTO diagnosis_code (franchise_id, code, term, species)
  SELECT p_franchise, s.code, s.term, s.species
  FROM (VALUES
    ('VC-001', 'Otitis externa', NULL), ('VC-002', 'Periodontal disease', NULL),
    ('VC-003', 'Dental calculus', NULL), ('VC-004', 'Obesity', NULL), ('VC-005', 'Osteoarthritis', NULL),
    ('VC-006', 'Atopic dermatitis', 'dog'), ('VC-007', 'Flea allergic dermatitis', NULL),
    ('VC-008', 'Pyoderma', 'dog'), ('VC-009', 'Anal sac impaction', 'dog'), ('VC-010', 'Gastroenteritis', NULL),
    ('VC-011', 'Colitis', NULL), ('VC-012', 'Pancreatitis', NULL),
    ('VC-013', 'Gastrointestinal foreign body', NULL), ('VC-014', 'Gastric dilatation-volvulus', 'dog'),
    ('VC-015', 'Chronic kidney disease', NULL), ('VC-016', 'Cystitis', NULL), ('VC-017', 'Urolithiasis', NULL),
    ('VC-018', 'Feline lower urinary tract disease', 'cat'), ('VC-019', 'Feline idiopathic cystitis', 'cat'),
    ('VC-020', 'Hyperthyroidism', 'cat'), ('VC-021', 'Hypothyroidism', 'dog'),
    ('VC-022', 'Diabetes mellitus', NULL), ('VC-023', 'Hyperadrenocorticism', 'dog'),
    ('VC-024', 'Myxomatous mitral valve disease', 'dog'), ('VC-025', 'Hypertrophic cardiomyopathy', 'cat'),
    ('VC-026', 'Dilated cardiomyopathy', 'dog'), ('VC-027', 'Infectious tracheobronchitis', 'dog'),
    ('VC-028', 'Feline upper respiratory tract disease', 'cat'), ('VC-029', 'Conjunctivitis', NULL),
    ('VC-030', 'Corneal ulcer', NULL), ('VC-031', 'Keratoconjunctivitis sicca', 'dog'),
    ('VC-032', 'Cranial cruciate ligament rupture', 'dog'), ('VC-033', 'Patellar luxation', 'dog'),
    ('VC-034', 'Hip dysplasia', 'dog'), ('VC-035', 'Intervertebral disc disease', 'dog'),
    ('VC-036', 'Idiopathic epilepsy', NULL), ('VC-037', 'Pyometra', NULL), ('VC-038', 'Mammary neoplasia', NULL),
    ('VC-039', 'Mast cell tumour', NULL), ('VC-040', 'Lipoma', 'dog'), ('VC-041', 'Lymphoma', NULL),
    ('VC-042', 'Bite wound', NULL), ('VC-043', 'Abscess', NULL), ('VC-044', 'Otodectes infestation', NULL),
    ('VC-045', 'Flea infestation', NULL), ('VC-046', 'No abnormality detected', NULL),
    ('VC-047', 'Dental malocclusion', 'rabbit'), ('VC-048', 'Gastrointestinal stasis', 'rabbit'),
    ('VC-049', 'Myxomatosis', 'rabbit')
  ) AS s(code, term, species)
  ON CONFLICT (franchise_id, code) DO NOTHING
$function$
"""

# --- Patients: registration ----------------------------------------------------------------------------------
# The other practices of the franchise where a live patient has this chip, by name only (RLS hides their
# patients; the registration form points the user there). Answers only for a practice of the caller's context.

MICROCHIP_KNOWN_IN_FRANCHISE = """
CREATE OR REPLACE FUNCTION public.microchip_known_in_franchise(p_practice_id bigint, p_microchip text)
 RETURNS SETOF text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT o.name
    FROM tenant h
    JOIN tenant o ON o.franchise_id = h.franchise_id AND o.kind = 'practice' AND o.id <> h.id
   WHERE h.id = p_practice_id AND h.id = ANY (app_practice_ids())
     AND EXISTS (SELECT FROM patient p
                  WHERE p.practice_id = o.id AND p.microchip = p_microchip AND p.deleted_at IS NULL)
   ORDER BY o.name
$function$
"""


# --- Referrals ------------------------------------------------------------------------------------------------
# A referral and its reports are rows of the referring practice. The practice referred to reads the referrals
# addressed to it, the reports it sent, and — while a referral is active (open or accepted, consent not
# withdrawn, inside its window, not revoked) — the referred patient's history: a permissive SELECT-only policy
# (``referral_grant``) on each history table, OR-ed with ``tenant_isolation``, so writes stay own-practice only.
# The primary owner's consent to share for referrals (``client_has_consent``, withdrawn on the client card) is
# part of "active" for the grant (migration 0530). ``referred_patients()`` is STABLE SECURITY DEFINER: evaluated
# once per statement and hashed (bench/referrals.py measures the cost). Its writes (status, findings) and the
# audit entry of each read go through the functions
# below, which check the referral is active and addressed to one of the caller's practices.

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

REFERRED_CLIENTS = """
CREATE OR REPLACE FUNCTION public.referred_clients()
 RETURNS TABLE(practice_id bigint, client_id bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT cp.practice_id, cp.client_id FROM referred_patients() g
    JOIN client_patient cp ON cp.practice_id = g.practice_id AND cp.patient_id = g.patient_id
$function$
"""

REFERRED_DOCUMENTS = """
CREATE OR REPLACE FUNCTION public.referred_documents()
 RETURNS TABLE(practice_id bigint, document_id bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT d.practice_id, d.id FROM referred_patients() g
    JOIN document d ON d.practice_id = g.practice_id AND d.patient_id = g.patient_id
$function$
"""

ACTIVE_REFERRAL_TO_CALLER = """
CREATE OR REPLACE FUNCTION public.active_referral_to_caller(p_practice_id bigint, p_referral_id bigint)
 RETURNS referral
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  hit referral;
BEGIN
  SELECT * INTO hit FROM referral r
   WHERE r.practice_id = p_practice_id AND r.id = p_referral_id AND r.to_practice_id = ANY (app_practice_ids())
     AND r.status IN ('open', 'accepted') AND r.revoked_at IS NULL AND r.consent_withdrawn_at IS NULL
     AND now() >= r.valid_from AND now() < r.valid_until;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'referral % is not active for your practice', p_referral_id USING ERRCODE = 'VC001';
  END IF;
  RETURN hit;
END $function$
"""

RECORD_REFERRAL_READ = """
CREATE OR REPLACE FUNCTION public.record_referral_read(p_practice_id bigint, p_referral_id bigint, p_entity text,
 p_ids bigint[])
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  r referral := active_referral_to_caller(p_practice_id, p_referral_id);
BEGIN
  INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash)
  VALUES (r.practice_id, 'read', p_entity, p_ids,
          jsonb_build_object('referral_id', r.id, 'reader_practice_id', r.to_practice_id), '', '');
END $function$
"""

RESPOND_TO_REFERRAL = """
CREATE OR REPLACE FUNCTION public.respond_to_referral(p_practice_id bigint, p_referral_id bigint, p_status text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  r referral := active_referral_to_caller(p_practice_id, p_referral_id);
BEGIN
  IF NOT (p_status = 'accepted' AND r.status = 'open' OR p_status = 'completed') THEN
    RAISE EXCEPTION 'a % referral cannot become %', r.status, p_status USING ERRCODE = 'VC001';
  END IF;
  UPDATE referral
     SET status = p_status,
         accepted_at = CASE WHEN p_status = 'accepted' THEN now() ELSE accepted_at END,
         accepted_by = CASE WHEN p_status = 'accepted' THEN app_user_id() ELSE accepted_by END,
         completed_at = CASE WHEN p_status = 'completed' THEN now() ELSE completed_at END,
         completed_by = CASE WHEN p_status = 'completed' THEN app_user_id() ELSE completed_by END
   WHERE practice_id = r.practice_id AND id = r.id;
END $function$
"""

SUBMIT_REFERRAL_REPORT = """
CREATE OR REPLACE FUNCTION public.submit_referral_report(p_practice_id bigint, p_referral_id bigint,
 p_findings text, p_diagnoses jsonb, p_lab_results jsonb, p_letter text, p_author_name text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  r referral := active_referral_to_caller(p_practice_id, p_referral_id);
  new_id bigint;
BEGIN
  INSERT INTO referral_report (practice_id, referral_id, from_practice_id, findings, diagnoses, lab_results,
                               letter, written_by, written_by_name)
  VALUES (r.practice_id, r.id, r.to_practice_id, p_findings, p_diagnoses, p_lab_results, p_letter,
          app_user_id(), p_author_name)
  RETURNING id INTO new_id;
  RETURN new_id;
END $function$
"""

PRACTICE_DIRECTORY = """
CREATE OR REPLACE FUNCTION public.practice_directory()
 RETURNS TABLE(id bigint, name text, city text, franchise_name text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT p.id, p.name::text, p.city::text, f.name::text FROM tenant p JOIN tenant f ON f.id = p.franchise_id
   WHERE p.kind = 'practice' AND cardinality(app_practice_ids()) > 0
   ORDER BY p.name
$function$
"""

REFERRAL_ADDRESSED = Policy(
    "referral_addressed", "SELECT", using="(to_practice_id = ANY (app_practice_ids()))", with_check=None
)
REFERRAL_REPORT_AUTHOR = Policy(
    "referral_report_author", "SELECT", using="(from_practice_id = ANY (app_practice_ids()))", with_check=None
)
REFERRAL_GRANTED_BY_PATIENT = (
    "client_patient", "weight_measurement", "visit", "diagnosis", "vaccination", "prescription", "lab_order",
    "lab_observation", "document", "imaging_study",
)  # fmt: skip
REFERRAL_GRANT_BY_PATIENT = Policy(
    "referral_grant", "SELECT",
    using="((practice_id, patient_id) IN ( SELECT g.practice_id, g.patient_id "
          "FROM referred_patients() g(practice_id, patient_id)))",
    with_check=None,
)  # fmt: skip
REFERRAL_GRANT_PATIENT = Policy(
    "referral_grant", "SELECT",
    using="((practice_id, id) IN ( SELECT g.practice_id, g.patient_id "
          "FROM referred_patients() g(practice_id, patient_id)))",
    with_check=None,
)  # fmt: skip
# The owner: name and phone, what a referral letter carries.
REFERRAL_GRANT_CLIENT = Policy(
    "referral_grant", "SELECT",
    using="((practice_id, id) IN ( SELECT g.practice_id, g.client_id "
          "FROM referred_clients() g(practice_id, client_id)))",
    with_check=None,
)  # fmt: skip
REFERRAL_GRANT_DOCUMENT_CONTENT = Policy(
    "referral_grant", "SELECT",
    using="((practice_id, document_id) IN ( SELECT g.practice_id, g.document_id "
          "FROM referred_documents() g(practice_id, document_id)))",
    with_check=None,
)  # fmt: skip
# The owner's phone and the document bytes are encrypted with the referring practice's data key; the wrapped key
# opens nothing without the master key, and the rows it could decrypt stay behind their own policies.
REFERRAL_GRANT_DATA_KEY = Policy(
    "referral_grant", "SELECT",
    using="(practice_id IN ( SELECT g.practice_id FROM referred_patients() g(practice_id, patient_id)))",
    with_check=None,
)  # fmt: skip

# --- Consent per purpose --------------------------------------------------------------------------------------
# A client's current consent to a purpose is the newest ``client_consent`` row (none: not granted); an erased client
# consents to nothing (migration 0470). A plain
# function under the caller's row-level security; inside a SECURITY DEFINER function (the referral grant) it sees
# what that function's owner sees.

# The consent record is append-only for the application; an erasure clears the free-text notes through this.
ERASE_CONSENT_NOTES = """
CREATE OR REPLACE FUNCTION public.erase_consent_notes(p_practice bigint, p_clients bigint[])
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  done int;
BEGIN
  IF NOT (p_practice = ANY (app_practice_ids())) THEN
    RAISE EXCEPTION 'practice % is not in the access context', p_practice;
  END IF;
  UPDATE client_consent SET note = NULL
   WHERE practice_id = p_practice AND client_id = ANY (p_clients) AND note IS NOT NULL;
  GET DIAGNOSTICS done = ROW_COUNT;
  RETURN done;
END $function$
"""

CLIENT_HAS_CONSENT = """
CREATE OR REPLACE FUNCTION public.client_has_consent(p_practice_id bigint, p_client_id bigint, p_purpose text)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
  SELECT NOT EXISTS (SELECT FROM client_erasure e WHERE e.practice_id = p_practice_id AND e.client_id = p_client_id)
     AND coalesce((SELECT c.granted FROM client_consent c
                    WHERE c.practice_id = p_practice_id AND c.client_id = p_client_id AND c.purpose = p_purpose
                    ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1), false)
$function$
"""

# --- Privacy: erasure ------------------------------------------------------------------------------------------
# An erasure (``warehouse.privacy.erasure``) rewrites the audit entries about the client whose detail names them
# (what its pattern matches becomes ``[erased]``, case-insensitively) and keeps each rewritten entry's new hash in ``audit_redaction``,
# which ``warehouse.kernel.audit.verify_chain`` checks it against (its links to its neighbours are unchanged).

AUDIT_REDACT = """
CREATE OR REPLACE FUNCTION public.audit_redact(p_practice bigint, p_entities text[], p_ids bigint[],
 p_pattern text, p_erasure bigint)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  entry record;
  redacted text;
  done int := 0;
BEGIN
  IF NOT (p_practice = ANY (app_practice_ids())) THEN
    RAISE EXCEPTION 'practice % is not in the access context', p_practice;
  END IF;
  FOR entry IN SELECT * FROM audit_log
                WHERE practice_id = p_practice AND entity = ANY (p_entities) AND entity_ids && p_ids
                ORDER BY seq FOR UPDATE LOOP
    redacted := regexp_replace(entry.detail::text, p_pattern, '[erased]', 'gi');
    CONTINUE WHEN redacted = entry.detail::text;
    UPDATE audit_log SET detail = redacted::jsonb WHERE practice_id = p_practice AND seq = entry.seq;
    INSERT INTO audit_redaction (practice_id, seq, erasure_id, hash)
    VALUES (p_practice, entry.seq, p_erasure,
            encode(sha256(convert_to(entry.prev_hash || audit_payload(p_practice, entry.seq, entry.occurred_at,
              entry.actor_user_id, entry.action, entry.entity, entry.entity_ids, redacted::jsonb, entry.session_id), 'UTF8')),
              'hex'))
    ON CONFLICT (practice_id, seq) DO UPDATE
      SET erasure_id = EXCLUDED.erasure_id, redacted_at = now(), hash = EXCLUDED.hash;
    done := done + 1;
  END LOOP;
  RETURN done;
END $function$
"""


# --- Everything, as the check reads it ------------------------------------------------------------------------

FUNCTIONS = (
    APP_PRACTICE_IDS, APP_USER_ID, APP_FRANCHISE_IDS,
    PRACTICE_PARTITIONED_TABLES, ONBOARD_PRACTICE, OFFBOARD_PRACTICE, REFRESH_PRACTICE_STATISTICS,
    AUDIT_PAYLOAD, AUDIT_CHAIN, AUDIT_STATEMENT, AUDIT_PRACTICE_DETAILS,
    RECORD_SHARED_CHANGE,
    TOUCH_USER_SESSION, REVOKE_SESSIONS_OF_CHANGED_USER, OWN_CREDENTIALS,
    SEARCH_WORDS, SEARCH_SYNC_CLIENT, SEARCH_SYNC_PATIENT, SEARCH_REINDEX, SEARCH_VOCABULARY_ADD,
    SEARCH_VOCABULARY_FORGET, SEARCH_SIMILAR_WORDS,
    MART_LOCAL_DAY, MART_DIRTY_APPOINTMENT, MART_DIRTY_VISIT, MART_DIRTY_STAFF_SHIFT, MART_DIRTY_DIAGNOSIS,
    MART_DIRTY_INVOICE, MART_DIRTY_INVOICE_LINE, MART_DIRTY_PAYMENT, MART_DIRTY_CLIENT_PATIENT,
    MART_DIRTY_VACCINATION, MART_DIRTY_REMINDER,
    WRITEBACK_CAPTURE, WRITEBACK_HOLD, WRITEBACK_FORGET_SUPERSEDED,
    SEED_DIAGNOSIS_CODES,
    MICROCHIP_KNOWN_IN_FRANCHISE,
    APP_SESSION_ID,
    REFERRED_PATIENTS, REFERRED_CLIENTS, REFERRED_DOCUMENTS, ACTIVE_REFERRAL_TO_CALLER, RECORD_REFERRAL_READ,
    RESPOND_TO_REFERRAL, SUBMIT_REFERRAL_REPORT, PRACTICE_DIRECTORY,
    CLIENT_HAS_CONSENT, ERASE_CONSENT_NOTES,
    AUDIT_REDACT,
)  # fmt: skip

# (tables, policy): the policy on each of the tables.
POLICIES: tuple[tuple[tuple[str, ...], Policy], ...] = (
    (PRACTICE_TABLES, TENANT_ISOLATION),
    (FRANCHISE_TABLES, FRANCHISE_ISOLATION),
    (("tenant",), VISIBLE_TENANTS),
    (("tenant",), PRACTICE_DETAILS),
    (("membership",), VISIBLE_MEMBERSHIPS),
    (("app_user",), COLLEAGUES),
    (("app_user",), OWN_ACCOUNT),
    (("user_session",), OWN_SESSIONS),
    (("user_session",), END_OWN_SESSIONS),
    (("oidc_identity",), OWN_IDENTITIES),
    (("breed",), REFERENCE_DATA),
    (("referral",), REFERRAL_ADDRESSED),
    (("referral_report",), REFERRAL_REPORT_AUTHOR),
    (REFERRAL_GRANTED_BY_PATIENT, REFERRAL_GRANT_BY_PATIENT),
    (("patient",), REFERRAL_GRANT_PATIENT),
    (("client",), REFERRAL_GRANT_CLIENT),
    (("document_content",), REFERRAL_GRANT_DOCUMENT_CONTENT),
    (("tenant_data_key",), REFERRAL_GRANT_DATA_KEY),
)

# Triggers on one table, written out.
TRIGGERS = (
    AUDIT_CHAIN_TRIGGER,
    AUDIT_PRACTICE_DETAILS_TRIGGER,
    *REVOKE_SESSIONS_TRIGGERS,
    *WRITEBACK_TRIGGERS,
    WRITEBACK_FORGET_SUPERSEDED_TRIGGER,
)
# (tables, triggers): each trigger definition on each of the tables (``{table}`` stands for the table).
TRIGGERS_ON_TABLES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (AUDITED_TABLES, AUDIT_STATEMENT_TRIGGERS),
    (VERSIONED_TABLES, (VERSION_CHANGES_TRIGGER,)),
    (SEARCH_INDEXED_TABLES, SEARCH_SYNC_TRIGGERS),
    (MART_QUEUE_TABLES, MART_QUEUE_TRIGGERS),
)
