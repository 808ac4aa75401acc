"""Issuance and call-next under concurrent HTTP clients, against the real server on loopback.

Starts gunicorn (one worker, threads, as production runs it) on a fresh SQLite file, then:
C kiosk clients issue tickets while K counter clients call next and finish, for S seconds.
Prints operations/s, p50/p99 latency, duplicate labels and double calls (read back from the
database), and the ratio against a baseline run (1 kiosk client, 1 counter) measured first in
the same process. The last line is one JSON object.

    python bench/issuance.py [--clients 20] [--counters 6] [--seconds 10]
"""
import argparse
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, threads: int, workers: int):
        self.db = workdir / "bench.sqlite"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{self.db}",
                    "QUEUE_APP_SECRET_KEY": "bench-secret", "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_BASE_URL": self.base}
        cli = [sys.executable, "-m", "queue_app.cli"]
        subprocess.run(cli + ["init-db"], env=self.env, cwd=ROOT, check=True, capture_output=True)
        seeded = subprocess.run(cli + ["seed-demo"], env=self.env, cwd=ROOT, check=True, capture_output=True, text=True)
        self.kiosk_token = seeded.stdout.strip().splitlines()[-1].split(": ")[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "wsgi:app"],
            env=self.env, cwd=ROOT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/api/v1/branches", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def staff_token(base: str) -> str:
    response = requests.post(base + "/api/v1/auth/token", json={"email": "admin@demo.test", "password": "demo-password"})
    response.raise_for_status()
    return response.json()["token"]


def prepare_counters(base: str, token: str, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    existing = requests.get(base + "/api/v1/branches/demo/counters", headers=headers).json()
    ids = [c["id"] for c in existing]
    for i in range(len(ids), count):
        created = requests.post(base + "/api/v1/branches/demo/counters", headers=headers,
                                json={"name": f"Bench {i + 1}", "services": ["A", "B", "C"], "state": "open"})
        created.raise_for_status()
        ids.append(created.json()["id"])
    for counter_id in ids:
        requests.patch(base + f"/api/v1/counters/{counter_id}", headers=headers,
                       json={"services": ["A", "B", "C"], "state": "open"}).raise_for_status()
    return ids[:count]


def drive(server: Server, clients: int, counters: int, seconds: float, workers: int) -> dict:
    token = staff_token(server.base)
    counter_ids = prepare_counters(server.base, token, counters)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = [0.0]
    start_line = threading.Barrier(clients + counters + 1)

    def timed(session, method, url, **kwargs):
        began = time.perf_counter()
        response = session.request(method, url, timeout=30, **kwargs)
        elapsed = time.perf_counter() - began
        with lock:
            latencies.append(elapsed)
            if response.status_code >= 500 or response.status_code in (400, 401, 403, 404, 422):
                failures.append(f"{method} {url} -> {response.status_code}")
        return response

    def kiosk(seed):
        rng = random.Random(seed)
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {server.kiosk_token}"
            start_line.wait()
            while time.perf_counter() < stop_at[0]:
                timed(session, "POST", server.base + "/api/v1/branches/demo/tickets", json={"service": rng.choice("ABC")})

    def counter(counter_id):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            start_line.wait()
            while time.perf_counter() < stop_at[0]:
                called = timed(session, "POST", server.base + f"/api/v1/counters/{counter_id}/call-next")
                if called.status_code == 200:
                    timed(session, "POST", server.base + f"/api/v1/tickets/{called.json()['id']}/finish")

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(clients)]
    threads += [threading.Thread(target=counter, args=(cid,)) for cid in counter_ids]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    with sqlite3.connect(server.db) as con:
        duplicates = con.execute(
            "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM ticket GROUP BY branch_id, local_date, label)"
        ).fetchone()[0]
        double_calls = con.execute(
            "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM ticket_event WHERE type='called' GROUP BY ticket_id)"
        ).fetchone()[0]
        issued = con.execute("SELECT COUNT(*) FROM ticket").fetchone()[0]
        called = con.execute("SELECT COUNT(*) FROM ticket_event WHERE type='called'").fetchone()[0]
    ordered = sorted(latencies)
    return {
        "clients": clients, "counters": counters, "seconds": round(elapsed, 2), "operations": len(latencies),
        "ops_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "issued": issued, "called": called, "duplicates": duplicates, "double_calls": double_calls,
        "errors": len(failures), "workers": workers,
    }


def run(clients: int, counters: int, seconds: float, threads: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(Path(workdir), threads, workers)
        try:
            return drive(server, clients, counters, seconds, workers)
        finally:
            server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="concurrent kiosk clients issuing tickets")
    parser.add_argument("--counters", type=int, default=6, help="concurrent counter clients calling next")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn worker processes (one per instance in production; see README)")
    args = parser.parse_args()

    baseline = run(1, 1, min(args.seconds, 5), args.threads, 1)
    print(f"baseline (1 client, 1 counter): {baseline['ops_per_s']} ops/s, p50 {baseline['p50_ms']} ms, "
          f"p99 {baseline['p99_ms']} ms")
    result = run(args.clients, args.counters, args.seconds, args.threads, args.workers)
    print(f"{result['clients']} clients + {result['counters']} counters for {result['seconds']} s: "
          f"{result['operations']} operations, {result['ops_per_s']} ops/s, p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms")
    print(f"issued {result['issued']}, called {result['called']}, duplicate labels {result['duplicates']}, "
          f"double calls {result['double_calls']}, client errors {result['errors']}")
    ratio = result["ops_per_s"] / baseline["ops_per_s"] if baseline["ops_per_s"] else 0
    print(f"throughput vs baseline: x{ratio:.2f} (goal: >= 300 ops/s at 20 clients, p99 < 100 ms, 0 duplicates)")
    print(json.dumps({**result, "baseline_ops_per_s": baseline["ops_per_s"], "ratio_vs_baseline": round(ratio, 2)}))


if __name__ == "__main__":
    main()
