"""SQL building blocks used by migrations to put a table under tenancy, audit and versioning.

Table names come from migration code (constants), never from users; they are still quoted with
``quote_ident``-equivalent double quotes so a future odd name cannot break the statement.
"""

from __future__ import annotations

APP_ROLE = "vetconnect_app"
SYSTEM_ROLE = "vetconnect_system"
ANALYST_ROLE = "vetconnect_analyst"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_roles() -> str:
    # Roles are cluster-wide and may already exist (another database on the same server, a re-run).
    return f"""
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SYSTEM_ROLE}') THEN
        CREATE ROLE {SYSTEM_ROLE} NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
    END $$;
    GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {SYSTEM_ROLE};
    """


def protect_practice_table(table: str, *, app_privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """RLS enabled and forced; rows visible and writable only for practices in ``app.practice_ids``."""
    t = q(table)
    return f"""
    ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON {t}
      USING (practice_id = ANY (app_practice_ids()))
      WITH CHECK (practice_id = ANY (app_practice_ids()));
    GRANT {app_privileges} ON {t} TO {APP_ROLE};
    GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {SYSTEM_ROLE};
    """


def protect_franchise_table(table: str) -> str:
    """Franchise-level shared resources: visible and writable for the franchises of the allowed practices."""
    t = q(table)
    return f"""
    ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
    CREATE POLICY franchise_isolation ON {t}
      USING (franchise_id = ANY (app_franchise_ids()))
      WITH CHECK (franchise_id = ANY (app_franchise_ids()));
    GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {APP_ROLE};
    GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {SYSTEM_ROLE};
    """


def audit_writes(table: str) -> str:
    """Statement-level triggers with transition tables: one audit entry per practice per statement, listing
    every row id. Set-based, so a bulk load of a million rows costs one INSERT…SELECT, not a million."""
    t = q(table)
    stmts = []
    for op, ref in (("INSERT", "NEW TABLE AS changed_rows"), ("UPDATE", "NEW TABLE AS changed_rows"),
                    ("DELETE", "OLD TABLE AS changed_rows")):  # fmt: skip
        stmts.append(
            f"CREATE TRIGGER audit_{op.lower()} AFTER {op} ON {t} REFERENCING {ref} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_statement();"
        )
    return "\n".join(stmts)


def version_changes(table: str) -> str:
    """Row-level history (who, when, old → new) for franchise shared resources and their practice overrides."""
    return (
        f"CREATE TRIGGER version_changes AFTER INSERT OR UPDATE OR DELETE ON {q(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION record_shared_change();"
    )
