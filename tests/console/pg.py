"""A throwaway PostgreSQL cluster: initdb and pg_ctl on a free port in a temporary folder, as the `postgres` user when
run as root (PostgreSQL refuses root). The console's tests and its benchmark use it."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from app.local_server import free_port


def _runuser() -> str:
    # runuser lives in /usr/sbin, which a minimal PATH (env -i, some CI runners) leaves out.
    found = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("runuser is not installed (util-linux); as root, PostgreSQL must run as the postgres user")
    return found


def _pg_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    which = shutil.which(name)
    if which is None:
        raise RuntimeError(f"{name} is not installed; scripts/setup.sh installs Debian's postgresql")
    return which


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder with trust auth on 127.0.0.1 only, stopped and removed afterwards."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="heedful-pg-"))
        self.data = self.root / "data"
        # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user the package creates.
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        prefix = [_runuser(), "-u", self.user, "--"] if self.user else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr or result.stdout}")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://heedful@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://heedful@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(_pg_binary("initdb"), "-D", str(self.data), "--auth=trust", "-U", "heedful", "--encoding=UTF8",
                  "--no-sync")
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -h 127.0.0.1 -k {self.root} -F", "start")

    def stop(self) -> None:
        try:
            self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=heedful dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=heedful dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
