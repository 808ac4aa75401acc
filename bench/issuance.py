"""Issuance and call-next under concurrent HTTP clients, against the real server on loopback.

Starts gunicorn (one worker, threads, as production runs it) on a fresh SQLite file, then:
C kiosk clients issue tickets while K counter clients call next and finish, for S seconds.
Prints operations/s, p50/p99 latency, duplicate labels and double calls (read back from the
database), and the ratio against a baseline run (1 kiosk client, 1 counter) measured first in
the same process. The last line is one JSON object.

    python bench/issuance.py [--clients 20] [--counters 6] [--seconds 10]

PostgreSQL mode starts a throwaway PostgreSQL server from the binaries (as tests/pg_server.py
does), runs N single-worker gunicorn instances on it (clients spread round-robin over them, as a
proxy would), and also measures the SQLite single-instance figure at the same load for comparison:

    python bench/issuance.py --db postgresql --instances 2 --clients 20,50
"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from servers import ROOT, free_port, start_postgres, wait_until_serving


class Server:
    """One or more gunicorn instances on one database (a fresh SQLite file, or a PostgreSQL database)."""

    def __init__(self, workdir: Path, threads: int, workers: int, database_url: str | None = None, instances: int = 1):
        self.db = workdir / "bench.sqlite"
        self.database_url = database_url or f"sqlite:///{self.db}"
        self.ports = [free_port() for _ in range(instances)]
        self.bases = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.base = self.bases[0]
        self.env = {**os.environ, "QUEUE_APP_DATABASE_URL": self.database_url,
                    "QUEUE_APP_SECRET_KEY": "bench-secret", "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_BASE_URL": self.base,
                    "QUEUE_APP_RATELIMIT_ENABLED": "0"}
        cli = [sys.executable, "-m", "queue_app.cli"]
        subprocess.run(cli + ["init-db"], env=self.env, cwd=ROOT, check=True, capture_output=True)
        seeded = subprocess.run(cli + ["seed-demo"], env=self.env, cwd=ROOT, check=True, capture_output=True, text=True)
        self.kiosk_token = seeded.stdout.strip().splitlines()[-1].split(": ")[1]
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
             "--log-level", "warning", "wsgi:app"],
            env=self.env, cwd=ROOT,
        ) for port in self.ports]
        try:
            wait_until_serving(self.bases, self.processes)
        except BaseException:
            self.stop()
            raise

    def query(self, sql: str):
        if self.database_url.startswith("sqlite"):
            with sqlite3.connect(self.db) as con:
                return con.execute(sql).fetchone()[0]
        import psycopg

        with psycopg.connect(self.database_url.replace("postgresql+psycopg://", "postgresql://")) as con:
            return con.execute(sql).fetchone()[0]

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)


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
        base = server.bases[seed % len(server.bases)]  # spread over the instances, as a proxy does
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {server.kiosk_token}"
            start_line.wait()
            while time.perf_counter() < stop_at[0]:
                timed(session, "POST", base + "/api/v1/branches/demo/tickets", json={"service": rng.choice("ABC")})

    def counter(counter_id, n):
        base = server.bases[n % len(server.bases)]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            start_line.wait()
            while time.perf_counter() < stop_at[0]:
                called = timed(session, "POST", base + f"/api/v1/counters/{counter_id}/call-next")
                if called.status_code == 200:
                    timed(session, "POST", base + f"/api/v1/tickets/{called.json()['id']}/finish")

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(clients)]
    threads += [threading.Thread(target=counter, args=(cid, n)) for n, cid in enumerate(counter_ids)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    duplicates = server.query(
        "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM ticket GROUP BY branch_id, local_date, label) t")
    double_calls = server.query(
        "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM ticket_event WHERE type='called' GROUP BY ticket_id) t")
    issued = server.query("SELECT COUNT(*) FROM ticket")
    called = server.query("SELECT COUNT(*) FROM ticket_event WHERE type='called'")
    ordered = sorted(latencies)
    return {
        "clients": clients, "counters": counters, "seconds": round(elapsed, 2), "operations": len(latencies),
        "ops_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "issued": issued, "called": called, "duplicates": duplicates, "double_calls": double_calls,
        "errors": len(failures), "workers": workers, "instances": len(server.bases),
        "database": "postgresql" if server.database_url.startswith("postgresql") else "sqlite",
    }


def run(clients: int, counters: int, seconds: float, threads: int, workers: int, postgres=None,
        instances: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        url = None
        if postgres is not None:
            url = postgres.create_database(f"bench_{int(time.time() * 1000)}_{clients}")
        server = Server(Path(workdir), threads, workers, url, instances)
        try:
            return int_values(drive(server, clients, counters, seconds, workers))
        finally:
            server.stop()


def int_values(result: dict) -> dict:
    return {k: int(v) if hasattr(v, "__int__") and not isinstance(v, (float, bool, int, str)) else v
            for k, v in result.items()}


def main_postgres(args):
    postgres = start_postgres()
    results = []
    try:
        baseline = run(1, 1, min(args.seconds, 5), args.threads, 1, postgres, 1)
        print(f"PostgreSQL baseline (1 client, 1 counter, 1 instance): {baseline['ops_per_s']} ops/s, "
              f"p50 {baseline['p50_ms']} ms, p99 {baseline['p99_ms']} ms")
        for clients in args.clients:
            result = run(clients, args.counters, args.seconds, args.threads, 1, postgres, args.instances)
            sqlite = run(clients, args.counters, args.seconds, args.threads, 1)
            ratio = result["ops_per_s"] / baseline["ops_per_s"] if baseline["ops_per_s"] else 0
            print(f"PostgreSQL, {args.instances} instances, {clients} clients + {args.counters} counters: "
                  f"{result['ops_per_s']} ops/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                  f"issued {result['issued']}, called {result['called']}, duplicate labels {result['duplicates']}, "
                  f"double calls {result['double_calls']}, client errors {result['errors']}; x{ratio:.2f} vs baseline")
            print(f"SQLite, 1 instance, same load: {sqlite['ops_per_s']} ops/s, p50 {sqlite['p50_ms']} ms, "
                  f"p99 {sqlite['p99_ms']} ms, duplicate labels {sqlite['duplicates']}, "
                  f"double calls {sqlite['double_calls']}; PostgreSQL/SQLite x"
                  f"{result['ops_per_s'] / sqlite['ops_per_s']:.2f}")
            results.append({**result, "ratio_vs_baseline": round(ratio, 2), "sqlite_ops_per_s": sqlite["ops_per_s"],
                            "sqlite_p50_ms": sqlite["p50_ms"], "sqlite_p99_ms": sqlite["p99_ms"],
                            "sqlite_duplicates": sqlite["duplicates"]})
    finally:
        postgres.stop()
    print(json.dumps({"cores": os.cpu_count(), "baseline_ops_per_s": baseline["ops_per_s"], "runs": results}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="20",
                        help="concurrent kiosk clients issuing tickets (PostgreSQL mode: a list, e.g. 20,50)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--instances", type=int, default=2, help="PostgreSQL mode: gunicorn instances")
    parser.add_argument("--counters", type=int, default=6, help="concurrent counter clients calling next")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn worker processes (one per instance in production; see docs/pages/operating/deployment.md)")
    args = parser.parse_args()
    args.clients = [int(c) for c in str(args.clients).split(",")]
    if args.db == "postgresql":
        return main_postgres(args)
    args.clients = args.clients[0]

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
