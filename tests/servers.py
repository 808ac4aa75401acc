"""The real servers the tests start, in one place: the app (`queue-app run`, gunicorn), PostgreSQL,
Redis, nginx and Chromium, with free ports and waiting for a server to answer.

Each server takes a free loopback port and keeps its files in a folder of its own, so several
pytest-xdist workers run side by side. The fixtures over them (pg_server, chromium_session, server,
redis_server, smtp_server) are in conftest.py; test modules start servers only through here.
"""
import email
import email.policy
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
# `queue-app` as the console script runs it (`python -m queue_app.cli` would warn on stderr that
# the package imported the module first, and the log tests read stderr).
QUEUE_APP = [sys.executable, "-c", "from queue_app.cli import main; main()"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_binary(name: str) -> str:
    """Path of a service binary a test needs; skip without it, or fail when CI requires services."""
    path = shutil.which(name)
    if path is None:
        reason = f"'{name}' is not on PATH (install it, e.g. with apt-get, to run this test)"
        if os.environ.get("QUEUE_APP_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; QUEUE_APP_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until `url` answers 2xx; fails early if the process exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`queue-app ARGS` as an operator types it (the console script of this install)."""
    return subprocess.run([*QUEUE_APP, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=300)


def server_env(database_url: str, **extra: str) -> dict:
    """The environment of a `queue-app run` under test: this database, no timed jobs, no rate limits."""
    return {**os.environ, "QUEUE_APP_DATABASE_URL": database_url, "QUEUE_APP_SECRET_KEY": "test-server-secret",
            "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_RATELIMIT_ENABLED": "0", **extra}


# --- the app --------------------------------------------------------------------------------------

class AppServer:
    """`queue-app run` in its own process: the product as it ships, not a test double. Keeps its
    port across `stop`/`kill` and `start`, so a restart is the same address."""

    def __init__(self, env: dict, log_path: Path, port: int | None = None, host: str = "127.0.0.1",
                 ready_path: str = "/api/v1/branches", log_stdout: bool = True):
        self.env = env
        self.log_stdout = log_stdout  # False: the log has stderr only (the log lines, not `run`'s banner)
        self.port = port or free_port()
        self.host = host  # another address than loopback: reached as from the lobby network
        self.base = f"http://{host}:{self.port}"
        self.log_path = log_path
        self.ready_path = ready_path
        self.process = None

    @classmethod
    def on_sqlite(cls, db_path: Path, log_path: Path, host: str = "127.0.0.1") -> "AppServer":
        """On a SQLite file, as the browser and kiosk tests use it: a fixed secret key (sessions
        survive a restart), its own address as the base URL of links and QR codes."""
        server = cls(server_env(f"sqlite:///{db_path}", QUEUE_APP_SECRET_KEY="browser-test-secret"), log_path,
                     host=host, ready_path="/")
        server.env["QUEUE_APP_BASE_URL"] = server.base
        return server

    def start(self, timeout: float = 30) -> "AppServer":
        bind = "127.0.0.1" if self.host == "127.0.0.1" else "0.0.0.0"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*QUEUE_APP, "run", "--port", str(self.port), "--host", bind],
                env=self.env, cwd=ROOT, stdout=log if self.log_stdout else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self.log_stdout else log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        pytest.fail(f"server did not answer in {timeout:.0f} s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: a crash, no clean-up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_gunicorn(env: dict, port: int, log: Path, mode: str = "threading",
                   run_scheduler: bool = False) -> subprocess.Popen:
    """One app instance as the production pages start it (one worker): threading mode, or gevent
    (docs/pages/operating/production.md). Timed jobs are `queue-app scheduler`'s unless told."""
    worker = ["-k", "gevent", "--worker-connections", "5000"] if mode == "gevent" else ["--threads", "100"]
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", *worker,
                                 "-b", f"127.0.0.1:{port}", "wsgi:app"],
                                env={**env, "QUEUE_APP_RUN_SCHEDULER": "1" if run_scheduler else "0",
                                     "QUEUE_APP_ASYNC_MODE": mode}, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


# --- Redis ----------------------------------------------------------------------------------------

class RedisServer:
    """redis-server from PATH on a free loopback port, nothing written to disk; `stop` and `start`
    again keep the port (a Redis that went away and came back)."""

    def __init__(self, folder: Path, start: bool = True):
        self.binary = shutil.which("redis-server") or require_binary("redis-server")
        self.port = free_port()
        self.folder = folder
        self.process = None
        if start:
            self.start()

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen (SIGSTOP) server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)


# --- PostgreSQL -----------------------------------------------------------------------------------

def find_postgres() -> str | None:
    """The folder of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


class PostgresServer:
    """A throwaway PostgreSQL cluster started from the binaries on this machine. PostgreSQL refuses
    to run as root, so as root the cluster belongs to the `postgres` system user (runuser)."""

    def __init__(self, bindir: str, max_connections: int = 100):
        self.bindir = bindir
        self.max_connections = max_connections
        self.port = free_port()
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

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.root, ignore_errors=True)


# --- nginx ----------------------------------------------------------------------------------------

def start_nginx(folder: Path, site: str) -> subprocess.Popen:
    """nginx in the foreground with `site` (server and upstream blocks) as its whole http
    configuration; pid, logs and temporary files in `folder`."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    binary = binary or require_binary("nginx")
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                      "scgi"))
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        + "events { worker_connections 512; }\n"
        + f"http {{\naccess_log off;\n{temp}\n{site}\n}}\n")
    return subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # errors: error.log


# --- SMTP -----------------------------------------------------------------------------------------

class MailServer:
    """aiosmtpd on loopback, collecting what it receives; can start late (SMTP 'down, then up')."""

    def __init__(self):
        self.port = free_port()
        self.raw: list[bytes] = []
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.content)
        return "250 Message accepted for delivery"

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.raw]


# --- Chromium -------------------------------------------------------------------------------------

def chromium_path() -> str:
    """Debian's Chromium (Playwright drives it; it never downloads a browser)."""
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else require_binary("chromium")


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
