"""The PostgreSQL server the benchmark runs against.

By default a private cluster (``initdb`` + ``pg_ctl`` of the installed PostgreSQL, default settings,
fsync on) on a free loopback port in a temp directory, stopped and removed at the end: the benchmark
then never shows its databases to anything else running on the machine (the test suite counts
``ci_migrate_*`` databases on the shared server). ``--server URL`` uses an existing server instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise SystemExit(f"bench: {name} not found (install PostgreSQL server binaries, or pass --server URL)")
    return found


class Server:
    """A PostgreSQL server reachable as ``user@host:port`` with trust auth (no password)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"):
        self.host, self.port, self.user = host, port, user
        self._datadir: str | None = None
        self._as_user: list[str] = []

    @classmethod
    def from_url(cls, url: str) -> Server:
        from sqlalchemy.engine import make_url

        u = make_url(url)
        return cls(u.host or "127.0.0.1", u.port or 5432, u.username or "postgres")

    @classmethod
    def private(cls) -> Server:
        """initdb + start a throwaway cluster; call :meth:`stop` to remove it."""
        as_user: list[str] = []
        datadir = tempfile.mkdtemp(prefix="cimbench_pg_")
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres OS user
            pw = pwd.getpwnam("postgres")
            os.chown(datadir, pw.pw_uid, pw.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([*as_user, _pg_bin("initdb"), "-D", datadir, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
                       check=True, capture_output=True)
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {datadir}"
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", datadir, "-o", opts, "-l", f"{datadir}/log", "-w", "start"],
                       check=True, capture_output=True)
        server = cls("127.0.0.1", port, "postgres")
        server._datadir, server._as_user = datadir, as_user
        return server

    def stop(self) -> None:
        if self._datadir:
            subprocess.run([*self._as_user, _pg_bin("pg_ctl"), "-D", self._datadir, "-m", "fast", "-w", "stop"],
                           check=False, capture_output=True)
            shutil.rmtree(self._datadir, ignore_errors=True)
            self._datadir = None

    @property
    def url(self) -> str:
        """Server URL without a database: ci-migrate's ``--sandbox`` value."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/"

    def db_url(self, name: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def psql(self, database: str = "postgres") -> list[str]:
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                "-U", self.user, "-d", database]

    def sql(self, statement: str) -> str:
        proc = subprocess.run([*self.psql(), "-At", "-c", statement], check=False, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"psql failed: {statement}: {proc.stderr.strip()}")
        return proc.stdout

    def create(self, name: str) -> None:
        self.sql(f'CREATE DATABASE "{name}"')

    def drop(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def leftovers(self, prefix: str) -> list[str]:
        out = self.sql(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'")
        return [line for line in out.splitlines() if line]

