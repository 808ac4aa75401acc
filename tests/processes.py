"""Real processes for tests: free ports, waiting for a server, a throwaway Redis, and the load
workers that several client processes run (module-level so `multiprocessing` spawn can import them).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class RedisServer:
    """redis-server from PATH on a free loopback port, nothing written to disk."""

    def __init__(self, binary: str, folder: Path):
        self.port = free_port()
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def redis_binary() -> str:
    from conftest import require_binary

    return shutil.which("redis-server") or require_binary("redis-server")


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`queue-app ARGS` as an operator types it (the console script of this install)."""
    return subprocess.run([sys.executable, "-m", "queue_app.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=300)


def start_gunicorn(env: dict, port: int, log: Path) -> subprocess.Popen:
    """One app instance as the README's deployment section starts it (threading mode, one worker)."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "100",
                                 "-b", f"127.0.0.1:{port}", "wsgi:app"],
                                env={**env, "QUEUE_APP_RUN_SCHEDULER": "0"}, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- load workers: each runs in its own process, waits for `go`, reports through `results` ---------

def _session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def kiosk_worker(bases: list[str], token: str, branch: str, service: str, count: int, ready, go, results) -> None:
    """Issue `count` walk-in tickets, alternating between the instances."""
    http = _session(token)
    issued, errors = [], []
    ready.put(os.getpid())
    go.wait()
    for n in range(count):
        answer = http.post(f"{bases[n % len(bases)]}/api/v1/branches/{branch}/tickets", json={"service": service},
                           timeout=30)
        if answer.status_code == 201:
            issued.append((answer.json()["id"], answer.json()["label"]))
        else:
            errors.append((answer.status_code, answer.text[:200]))
    results.put({"kind": "kiosk", "issued": issued, "errors": errors})


def counter_worker(bases: list[str], token: str, counter_id: int, ready, go, kiosks_done, results) -> None:
    """Call next and finish until the kiosks are done and nobody is left, alternating instances."""
    http = _session(token)
    called, errors = [], []
    ready.put(os.getpid())
    go.wait()
    n = 0
    while True:
        n += 1
        done_before = kiosks_done.is_set()  # read before asking: a 204 after it means really empty
        answer = http.post(f"{bases[n % len(bases)]}/api/v1/counters/{counter_id}/call-next", timeout=30)
        if answer.status_code == 204:
            if done_before:
                break
            time.sleep(0.02)
            continue
        if answer.status_code != 200:
            errors.append((answer.status_code, answer.text[:200]))
            break
        ticket = answer.json()
        called.append((ticket["id"], ticket["label"]))
        finished = http.post(f"{bases[(n + 1) % len(bases)]}/api/v1/tickets/{ticket['id']}/finish", timeout=30)
        if finished.status_code != 200:
            errors.append((finished.status_code, finished.text[:200]))
            break
    results.put({"kind": "counter", "counter": counter_id, "called": called, "errors": errors})


def booking_worker(base: str, branch: str, service: str, start: str, n: int, ready, go, results) -> None:
    """One phone booking `start`; reports the status and error code."""
    ready.put(os.getpid())
    go.wait()
    answer = requests.post(f"{base}/api/v1/branches/{branch}/appointments", timeout=30, json={
        "service": service, "start": start, "name": f"Phone {n}", "email": f"phone{n}@example.test"})
    body = answer.json()
    results.put((answer.status_code, body.get("error", {}).get("code") if answer.status_code >= 400 else body["id"]))


def check_in_worker(base: str, token: str, branch: str, code: str, ready, go, results) -> None:
    """One kiosk scanning a booking's code; reports the status and the ticket it got."""
    ready.put(os.getpid())
    go.wait()
    answer = _session(token).post(f"{base}/api/v1/branches/{branch}/check-in", json={"code": code}, timeout=30)
    results.put((answer.status_code, answer.json().get("ticket_id")))
