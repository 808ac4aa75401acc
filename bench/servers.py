"""Throwaway servers for the benchmarks: PostgreSQL and Redis from the binaries on this machine."""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(bases: list[str], processes: list[subprocess.Popen], timeout: float = 60) -> None:
    """Return once every instance answers; otherwise stop them all and raise."""
    import requests

    for base in bases:
        deadline = time.time() + timeout
        while True:
            try:
                if requests.get(base + "/api/v1/branches", timeout=5).ok:
                    break
            except requests.RequestException:  # not listening yet, or still importing
                pass
            if time.time() > deadline:
                for process in processes:
                    process.terminate()
                raise RuntimeError(f"{base} did not start")
            time.sleep(0.2)


def _test_servers():
    """tests/servers.py, the servers the tests start, loaded under another name (this module is `servers` too)."""
    spec = importlib.util.spec_from_file_location("test_servers", ROOT / "tests" / "servers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_postgres():
    """A PostgreSQL server with fsync on (real durability, a fair figure); `.stop()` removes it."""
    tests = _test_servers()
    bindir = tests.find_postgres()
    if bindir is None:
        sys.exit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    server = tests.PostgresServer(bindir, max_connections=300)
    server.halt()  # the tests' server runs with fsync off
    server._run("pg_ctl", "-D", server.data, "-l", os.path.join(server.root, "log"), "-w", "-o",
                f"-p {server.port} -k {server.root} -c listen_addresses=127.0.0.1 -c max_connections=300", "start")
    return server


class Redis:
    """redis-server on a free loopback port, nothing on disk."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server not found: apt-get install redis-server")
        self.folder = tempfile.mkdtemp(prefix="bench-redis-")
        self.port = free_port()
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", self.folder],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    sys.exit("redis-server did not start")
                time.sleep(0.1)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def worker_rss_mb(master_pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a gunicorn master's worker process, in MiB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    values = {}
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return round(values["VmRSS"], 1), round(values["VmHWM"], 1)


def worker_pids(master_pid: int) -> list[int]:
    """The worker processes of a gunicorn master (its children)."""
    return [int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        # /proc/<pid>/stat: the name in parentheses may hold spaces; utime and stime are fields 14 and 15
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
