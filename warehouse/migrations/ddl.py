"""The database roles the application connects as (``warehouse.kernel.db``, ``warehouse.kernel.tenancy``, ``warehouse.marts.analysts``).

Migrations do not import these names: each spells them out in the SQL it keeps (``migrations/README.md``).
"""

from __future__ import annotations

APP_ROLE = "vetconnect_app"
SYSTEM_ROLE = "vetconnect_system"
ANALYST_ROLE = "vetconnect_analyst"
