"""A throwaway PostgreSQL server for tests, started from the binaries on this machine.

Looks for initdb/pg_ctl on PATH, then in Debian's /usr/lib/postgresql/*/bin. PostgreSQL refuses
to run as root, so as root the cluster belongs to the `postgres` system user (runuser).
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time


def find_binaries() -> str | None:
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: str, max_connections: int = 100):
        self.bindir = bindir
        self.max_connections = max_connections
        self.port = _free_port()
        self.root = tempfile.mkdtemp(prefix="queue-app-pg-")
        self.data = os.path.join(self.root, "data")
        self.as_user = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self) -> None:
        """Start (or start again after `halt`) on the same port and data folder."""
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c max_connections={self.max_connections}", "start")

    def halt(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (`fast` ends open sessions, as a restart does)."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, os.path.join(self.bindir, tool), *args], check=True, capture_output=True,
                       cwd=self.root)

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            # A copy of a migrated template is a file copy: much faster than running the migrations.
            connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.root, ignore_errors=True)
