"""Issue 17: an old backup cannot reveal an erased client once its key is gone.

Real embedded PostgreSQL archiving its WAL, real backups and restores, the real erasure service and the real
`vetconnect backup` CLI: a client X is in a full backup B1 and in the archive — encrypted, so no file holds X's
surname, postcode or e-mail — and a restore of a moment in B1 shows X; X is erased, a full backup B2 taken, and
`forget-erased` destroys B1's generation key: the restore to the B1 moment is refused naming the destroyed key,
B2 restores without X, not even in its files' dead row versions, and still no byte under backups/ reveals
X.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from tests.factories import cipher_for
from tests.vetconnect.backup_support import Home, add_practice_to, archiving_home, new_home, run_vetconnect
from vetconnect import backup, backup_keys, pgserver
from vetconnect.backup_crypto import generation_of
from warehouse.kernel.db import app_url, make_engine
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.privacy.erasure import erase_client
from warehouse.schema.clients import Client
from warehouse.security.permissions import Actor

SURNAME, POSTCODE, EMAIL = "Zwartkruis-Oosterbeek", "9999ZZ", "w.zwartkruis@voorbeeld.nl"
NEEDLES = tuple(n.encode() for n in (SURNAME, POSTCODE, EMAIL))


@pytest.fixture
def home() -> Iterator[Home]:
    with archiving_home() as made:
        yield made


def _add_client_x(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with system_session(engine, reason="test: client X") as session:
        practice_id = session.execute(text("SELECT id FROM tenant WHERE code = 'a1'")).scalar_one()
        cipher = cipher_for(session, practice_id, MASTER_KEY)
        client = Client(practice_id=practice_id, last_name=SURNAME, initials="W.", postcode=POSTCODE,
                        city="Lutjebroek", email_enc=cipher.encrypt("email", EMAIL),
                        email_bidx=cipher.email_index(EMAIL))  # fmt: skip
        session.add(client)
        session.flush()
        client_id = client.id
    engine.dispose()
    return practice_id, client_id


def _erase(url: str, practice_id: int, client_id: int) -> None:
    engine = make_engine(app_url(url))
    with tenant_session(engine, AccessContext.for_practices([practice_id])) as session:
        manager = Actor.at(None, practice_id, {"practice_manager"})
        erase_client(session, manager, practice_id, client_id, master_key=MASTER_KEY)
    engine.dispose()


def _revealing_files(backups: Path) -> list[str]:
    """Every file under backups/ (base backups, their clear manifests and labels, the WAL archive) holding one of
    X's strings as bytes."""
    files = [p for p in backups.rglob("*") if p.is_file()]
    assert any(p.parent.name == "wal" for p in files), "the WAL archive is part of what is searched"
    return [str(p) for p in files if any(needle in p.read_bytes() for needle in NEEDLES)]


def _restored(backups: Path, to: dt.datetime | None) -> tuple[list[str], list[str]]:
    """Restore ``to`` and serve it: the X surnames a query finds, and the restored files (data, indexes and the
    WAL replayed) that hold one of X's strings as bytes — a dead row version or a stale index entry included."""
    target = new_home()
    try:
        backup.restore(backups, target, to=to)
        served = pgserver.start(target / "pgdata")
        with psycopg.connect(
            host=str(served.socket_dir), port=served.port, user=pgserver.SUPERUSER, dbname=pgserver.DATABASE
        ) as conn:
            rows = conn.execute("SELECT last_name FROM client WHERE last_name LIKE 'Zwartkruis%'").fetchall()
        pgserver.stop(target / "pgdata")
        files = [p for p in (target / "pgdata").rglob("*") if p.is_file()]
        return [row[0] for row in rows], [str(p) for p in files if any(n in p.read_bytes() for n in NEEDLES)]
    finally:
        pgserver.stop(target / "pgdata")
        shutil.rmtree(target, ignore_errors=True)


def test_once_its_generation_key_is_destroyed_no_backup_reveals_the_erased_client(home: Home):
    practice_id, client_id = _add_client_x(home.url)
    b1 = backup.create_backup(home.server, home.backups)
    with_x = dt.datetime.now(dt.UTC)
    add_practice_to(home.url, "fx", "x1")  # a commit after the moment: recovery needs one to stop at it
    backup.archive_now(home.server)
    assert _revealing_files(home.backups) == []
    assert _restored(home.backups, with_x)[0] == [SURNAME]

    _erase(home.url, practice_id, client_id)
    b2 = backup.create_backup(home.server, home.backups)
    backup.archive_now(home.server)
    forgot = run_vetconnect(home.path, "backup", "forget-erased", "--grace-days", "0")
    assert forgot.returncode == 0, forgot.stderr
    assert f"destroyed the key of generation {b1.generation} " in forgot.stdout
    assert b1.label in forgot.stdout and b2.generation not in forgot.stdout

    store = backup_keys.key_store(home.backups)
    assert not (store / f"{b1.generation}.key").exists()
    b1_wal = [p for p in (home.backups / "wal").iterdir() if generation_of(p) == b1.generation]
    assert b1_wal, "B1's archived WAL is still on disk, unreadable"
    with pytest.raises(
        backup.BackupError, match=f"backup {b1.label} is unreadable: key destroyed on .*client erasure"
    ):
        backup.restore(home.backups, home.path / "never", to=with_x)
    assert not (home.path / "never" / "pgdata").exists()
    assert backup.verify_backup(b1).detail.startswith("unreadable: key destroyed on")

    # B2 and the WAL after it: X is neither found by a query nor anywhere in the files — the full backup rewrote
    # the tables the erasure left dead versions in before it began (`warehouse.privacy.compaction`).
    assert _restored(home.backups, None) == ([], [])
    assert _revealing_files(home.backups) == []
