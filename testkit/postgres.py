"""A real, throw-away PostgreSQL cluster for tests and benchmarks: `initdb` and `pg_ctl` on a free port.

    with PostgresServer() as server:
        url = server.create_database()      # postgresql://postgres@127.0.0.1:PORT/t_…, empty
        server.stop(); ...; server.start()  # the database down, then back on the same port

The cluster lives in a temporary folder, listens on 127.0.0.1 only (no Unix socket), trusts local
connections and skips fsync: it holds test data only. PostgreSQL refuses to run as root, so as root
the cluster is made and run by the `postgres` account Debian's package creates. `scripts/test.sh`
installs Debian's `postgresql` when it is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from testkit.redis_server import free_port

RUN_AS = "postgres"


def postgres_bindir() -> Path | None:
    """The folder of `initdb` and `pg_ctl` (Debian keeps them out of PATH), or None when not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One cluster: `start()` makes it on first use, `url` reaches its `postgres` database."""

    def __init__(self, *, port: int | None = None) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bindir = bindir
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.directory / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chown(self.directory, account.pw_uid, account.pw_gid)

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.directory)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    @property
    def url(self) -> str:
        """The cluster's `postgres` database."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        """postgresql://postgres@127.0.0.1:PORT/`database`"""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """True while the server answers."""
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Make the cluster (first time) and start it; returns when it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
        # fsync off: test data need not survive the machine, only the server's (crash-like) stop, which the
        # WAL written at each commit covers; so synchronous_commit stays on.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"), "-o", options,
                  "-w", "-t", str(int(timeout)), "start")
        return self

    def stop(self) -> None:
        """Stop the server at once (in-flight transactions are cut, as when a machine dies)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        """Drop the database at `url`, ending its connections first."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def database_files(self, url: str, *, wal: bool = False) -> bytes:
        """Every byte of the files of the database at `url` (its tables and indexes), dirty pages written first.

        With `wal`, the cluster's write-ahead log too. Read as the test's user (root can read the cluster's files).
        """
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert row is not None, f"no database {name}"
        folders = [self.data / "base" / str(row[0])] + ([self.data / "pg_wal"] if wal else [])
        return b"".join(p.read_bytes() for folder in folders for p in sorted(folder.iterdir()) if p.is_file())

    def close(self) -> None:
        """Stop the server and remove the cluster."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_down(server: PostgresServer, timeout: float = 10.0) -> None:
    """Return once `server` no longer accepts connections."""
    deadline = time.monotonic() + timeout
    while server.running and time.monotonic() < deadline:
        time.sleep(0.05)
