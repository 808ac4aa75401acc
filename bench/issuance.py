"""Issuance and call-next under concurrent HTTP clients, against the real server on loopback.

Each configuration gets a fresh copy of one seeded database and its own gunicorn (one worker, as
production runs it), in each of the two modes production offers (`--modes`): `threading` (gthread,
32 threads) and `gevent` (`-k gevent`, QUEUE_APP_ASYNC_MODE=gevent; docs/pages/operating/production.md).
C kiosk clients issue tickets (POST /api/v1/branches/demo/tickets with a kiosk token) while K
counter clients call next and finish. The clients are threads spread over P load-generator
processes, each with one keep-alive connection (http.client, little client CPU per request), so
that no single client interpreter queues the requests behind its GIL and inflates p99; they start
together at a barrier, load the server for `--warmup` seconds (1) that are not counted (a cold
worker's first requests: restarts are bench/restart_burst.py's), then for the S-second window whose
requests (those begun in it) are counted and their latencies merged.

One line per configuration: ops/s, p50/p99 latency, tickets issued and called in the window,
duplicate labels and double calls (read back from the database), client errors (any status other
than the expected one), the ratio to the 1-client figure (1 kiosk, 1 counter) on the same database
in the same run, and the server CPU per request: user+system time of the gunicorn workers
(/proc/<pid>/stat) over the window, divided by the operations (PostgreSQL's own processes are not
counted). Then the goal line per mode (SQLite, 20 clients) and one JSON object with every run.

    python bench/issuance.py [--clients 1,20,50] [--counters 6] [--seconds 10] [--warmup 1]
                             [--processes 2] [--modes threading,gevent]

`--db postgresql` adds a throwaway PostgreSQL server (fsync on) with 1 and 2 single-worker
instances (`--instances 1,2`; clients spread round-robin over them, as a proxy would), after the
SQLite figures of the same run:

    python bench/issuance.py --db postgresql

`--displays` shows what pushes cost: `--phones` (200) tickets are issued before each window; every
configuration runs once with no listener and once with one display in the branch room and one
phone following each of those tickets over Socket.IO (/live), and the second line adds the pushes
they received in the window and after it settled:

    python bench/issuance.py --displays
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import selectors
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from servers import (
    ROOT,
    cpu_seconds,
    free_port,
    start_postgres,
    wait_until_serving,
    worker_pids,
)

BRANCH = "demo"
ISSUE = f"/api/v1/branches/{BRANCH}/tickets"
CLI = [sys.executable, "-c", "from queue_app.cli import main; main()"]
GOAL = {"clients": 20, "ops_per_s": 300, "p99_ms": 100, "ratio": 0.9}
SETTLE_S = 0.5  # before and after the window: the server idle, trailing pushes done


class Databases:
    """A seeded database made once (init-db, seed-demo); each configuration runs on a copy."""

    def __init__(self, workdir: Path, postgres=None):
        self.workdir, self.postgres, self.copies = workdir, postgres, 0
        self.template = workdir / "template.sqlite"
        url = postgres.create_database("bench_template") if postgres else f"sqlite:///{self.template}"
        env = {**os.environ, "QUEUE_APP_DATABASE_URL": url, "QUEUE_APP_SECRET_KEY": "bench-secret",
               "QUEUE_APP_RUN_SCHEDULER": "0"}
        subprocess.run(CLI + ["init-db"], env=env, cwd=ROOT, check=True, capture_output=True)
        seeded = subprocess.run(CLI + ["seed-demo"], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
        self.kiosk_token = seeded.stdout.strip().splitlines()[-1].split(": ")[1]
        if postgres is None:  # the CLI leaves its writes in the WAL file: into the database file before copying
            with sqlite3.connect(self.template) as con:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def fresh(self) -> str:
        self.copies += 1
        if self.postgres:
            return self.postgres.create_database(f"bench_{self.copies}", template="bench_template")
        copy = self.workdir / f"run{self.copies}.sqlite"
        shutil.copyfile(self.template, copy)
        return f"sqlite:///{copy}"


def query(database_url: str, sql: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as con:
            return int(con.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as con:
        return int(con.execute(sql).fetchone()[0])


class Instances:
    """gunicorn instances (one worker each unless told otherwise) on one database."""

    def __init__(self, database_url: str, instances: int, threads: int, workers: int, mode: str = "threading"):
        self.database_url = database_url
        self.bases = [f"http://127.0.0.1:{free_port()}" for _ in range(instances)]
        env = {**os.environ, "QUEUE_APP_DATABASE_URL": database_url, "QUEUE_APP_SECRET_KEY": "bench-secret",
               "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_BASE_URL": self.bases[0], "QUEUE_APP_RATELIMIT_ENABLED": "0",
               "QUEUE_APP_ASYNC_MODE": mode}
        # As docs/pages/operating/production.md runs each mode.
        worker = (["-k", "gevent", "--worker-connections", "5000"] if mode == "gevent" else ["--threads", str(threads)])
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), *worker,
             "-b", base.removeprefix("http://"), "--log-level", "warning", "wsgi:app"],
            env=env, cwd=ROOT) for base in self.bases]
        try:
            wait_until_serving(self.bases, self.processes)
        except BaseException:
            self.stop()
            raise

    def worker_pids(self) -> list[int]:
        return sorted(pid for process in self.processes for pid in worker_pids(process.pid))

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)


class Client:
    """One keep-alive HTTP/1.1 connection with a bearer token."""

    def __init__(self, base: str, token: str):
        host, port = base.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.headers = {"Authorization": f"Bearer {token}"}
        self.json_headers = {**self.headers, "Content-Type": "application/json"}
        self.connection = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for _attempt in range(2):
            reused = self.connection is not None
            if not reused:  # connected on first use: an idle keep-alive connection would be closed
                self.connection = http.client.HTTPConnection(*self.address, timeout=60)
            try:
                self.connection.request(method, path, body=body,
                                        headers=self.headers if body is None else self.json_headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if not reused:
                    raise
                continue  # the server had closed the idle connection: the request never ran; once more
            if response.will_close:
                self.connection.close()
                self.connection = None
            return response.status, data
        raise ConnectionError(f"{method} {path}: connection closed twice")


def generator(kiosks: list[tuple[str, int]], counters: list[tuple[str, int]], kiosk_token: str, staff_token: str,
              ready, go, window_at, stop_at, results):
    """One load-generator process: its share of the kiosk and counter clients, one thread each."""
    latencies = array("d")  # seconds; appended from every thread (atomic under the GIL)
    errors: list[str] = []
    start = threading.Event()

    def timed(client: Client, method: str, path: str, expected: tuple[int, ...], body: bytes | None = None):
        counted = time.monotonic() >= window_at.value  # requests begun in the warm-up are not
        began = time.perf_counter()
        try:
            status, data = client.request(method, path, body)
        except (OSError, http.client.HTTPException) as error:
            errors.append(f"{method} {path}: {error!r}")
            time.sleep(0.1)  # no busy loop against a server that is gone
            return None, b""
        if counted:
            latencies.append(time.perf_counter() - began)
        if status not in expected:
            errors.append(f"{method} {path} -> {status} {data[:200]!r}")
        return status, data

    def kiosk(base: str, seed: int):
        rng = random.Random(seed)
        client = Client(base, kiosk_token)
        start.wait()
        end = stop_at.value
        while time.monotonic() < end:
            timed(client, "POST", ISSUE, (201,), json.dumps({"service": rng.choice("ABC")}).encode())

    def counter(base: str, counter_id: int):
        client = Client(base, staff_token)
        start.wait()
        end = stop_at.value
        while time.monotonic() < end:
            status, data = timed(client, "POST", f"/api/v1/counters/{counter_id}/call-next", (200, 204))
            if status == 200:
                timed(client, "POST", f"/api/v1/tickets/{json.loads(data)['id']}/finish", (200,))

    threads = [threading.Thread(target=kiosk, args=args) for args in kiosks]
    threads += [threading.Thread(target=counter, args=args) for args in counters]
    for thread in threads:
        thread.start()
    ready.put(("load", len(threads)))
    go.wait()  # the barrier: every process and thread starts at once
    start.set()
    time.sleep(max(0.0, window_at.value - time.monotonic()))
    used = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    done = resource.getrusage(resource.RUSAGE_SELF)
    results.put(("load", {"latencies": latencies, "errors": len(errors), "error_samples": errors[:3], "ended": ended,
                          "cpu_s": done.ru_utime + done.ru_stime - used.ru_utime - used.ru_stime}))


def listeners(base: str, tickets: list[str], ready, go, finish, results):
    """One process holding the display and the phones: Engine.IO 4 / Socket.IO 5 frames over bare
    WebSockets (websocket-client), counted by event name without decoding them, on one thread."""
    import websocket

    url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"

    def joined(join: dict):
        try:
            socket = websocket.create_connection(url, timeout=30)
            if not socket.recv().startswith("0"):  # the Engine.IO open packet
                raise ConnectionError("no open packet")
            socket.send("40/live,")
            while not socket.recv().startswith("40/live,"):
                pass
            socket.send('42/live,["join",' + json.dumps(join) + "]")
            first = '42/live,["queue"' if "branch" in join else '42/live,["ticket"'
            while not socket.recv().startswith(first):  # the snapshot a join gets at once
                pass
            return socket
        except (OSError, websocket.WebSocketException):
            return None

    with ThreadPoolExecutor(8) as pool:
        sockets = list(pool.map(joined, [{"branch": BRANCH}] + [{"ticket": token} for token in tickets]))
    selector = selectors.DefaultSelector()
    for index, socket in enumerate(sockets):
        if socket is not None:
            selector.register(socket.sock, selectors.EVENT_READ, index)
    counts: list[dict[str, int]] = [{} for _ in sockets]
    ready.put(("listeners", sum(socket is not None for socket in sockets)))
    counting = False
    while not finish.is_set():
        counting = counting or go.is_set()
        for key, _events in selector.select(timeout=0.05):
            socket = sockets[key.data]
            try:
                frame = socket.recv()
            except (OSError, websocket.WebSocketException):
                selector.unregister(key.fileobj)
                continue
            if frame == "2":  # the server's ping
                socket.send("3")
            elif counting and frame.startswith("42/live,["):
                name = frame[10:frame.find('"', 10)]
                counts[key.data][name] = counts[key.data].get(name, 0) + 1
    for socket in sockets:
        if socket is not None:
            socket.close()
    phones = counts[1:]
    results.put(("pushes", {
        "display_joined": sockets[0] is not None, "phones_joined": sum(s is not None for s in sockets[1:]),
        "display": counts[0], "phones": {name: sum(c.get(name, 0) for c in phones) for name in
                                         sorted({name for c in phones for name in c})},
        "phones_reached": sum(1 for c in phones if c.get("ticket")),
    }))


def staff_token(base: str) -> str:
    response = requests.post(base + "/api/v1/auth/token", json={"email": "admin@demo.test", "password": "demo-password"})
    response.raise_for_status()
    return response.json()["token"]


def prepare_counters(base: str, token: str, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    existing = requests.get(base + f"/api/v1/branches/{BRANCH}/counters", headers=headers).json()
    ids = [c["id"] for c in existing]
    for i in range(len(ids), count):
        created = requests.post(base + f"/api/v1/branches/{BRANCH}/counters", headers=headers,
                                json={"name": f"Bench {i + 1}", "services": ["A", "B", "C"], "state": "open"})
        created.raise_for_status()
        ids.append(created.json()["id"])
    for counter_id in ids:
        requests.patch(base + f"/api/v1/counters/{counter_id}", headers=headers,
                       json={"services": ["A", "B", "C"], "state": "open"}).raise_for_status()
    return ids[:count]


def issue_tickets(bases: list[str], kiosk_token: str, count: int) -> list[str]:
    """`count` waiting tickets before the window (for phones to follow); their tracking tokens."""
    def issue(n: int) -> str:
        status, data = Client(bases[n % len(bases)], kiosk_token).request(
            "POST", ISSUE, json.dumps({"service": "ABC"[n % 3]}).encode())
        if status != 201:
            raise RuntimeError(f"issuing a ticket before the window: {status} {data[:200]!r}")
        return json.loads(data)["token"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(issue, range(count)))


def measure(databases: Databases, args, mode: str, clients: int, instances: int, listening: bool) -> dict:
    counters = min(args.counters, clients)  # the 1-client baseline: 1 kiosk, 1 counter
    database_url = databases.fresh()
    phones = args.phones if args.displays else 0
    # In threading mode every WebSocket holds one of the worker's threads (the same count in both variants).
    threads = args.threads + (phones + 1 + 8 if args.displays else 0)
    server = Instances(database_url, instances, threads, args.workers, mode)
    ctx = multiprocessing.get_context("spawn")
    ready, results, go, finish = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    window_at, stop_at = ctx.Value("d", 0.0, lock=False), ctx.Value("d", 0.0, lock=False)
    procs = []
    try:
        token = staff_token(server.bases[0])
        counter_ids = prepare_counters(server.bases[0], token, counters)
        tickets = issue_tickets(server.bases, databases.kiosk_token, phones) if phones else []
        # Kiosk i and counter n go to instance i (n) modulo the instances, as a proxy spreads them;
        # kiosks then counters are dealt round-robin to the generator processes.
        processes = max(1, min(args.processes, clients + counters))
        for p in range(processes):
            kiosks = [(server.bases[i % instances], i) for i in range(clients) if i % processes == p]
            mine = [(server.bases[n % instances], cid) for n, cid in enumerate(counter_ids)
                    if (clients + n) % processes == p]
            procs.append(ctx.Process(target=generator, args=(kiosks, mine, databases.kiosk_token, token, ready, go,
                                                             window_at, stop_at, results)))
        if listening:
            procs.append(ctx.Process(target=listeners, args=(server.bases[0], tickets, ready, go, finish, results)))
        for proc in procs:
            proc.start()
        joined = dict(ready.get(timeout=300) for _ in procs)  # {"load": threads, "listeners": sockets joined}
        time.sleep(SETTLE_S)
        pids = server.worker_pids()
        window_at.value = began = time.monotonic() + args.warmup
        stop_at.value = began + args.seconds
        go.set()
        time.sleep(max(0.0, began - time.monotonic()))
        issued_before = query(database_url, "SELECT COUNT(*) FROM ticket")
        called_before = query(database_url, "SELECT COUNT(*) FROM ticket_event WHERE type='called'")
        cpu_before = cpu_seconds(pids)
        loads = [results.get(timeout=args.seconds + 300)[1] for _ in range(processes)]  # listeners report later
        time.sleep(SETTLE_S)  # the pushes and background work the window's requests left behind
        cpu_after = cpu_seconds(pids) if server.worker_pids() == pids else None  # None: a worker was replaced
        finish.set()
        pushes = results.get(timeout=60)[1] if listening else None
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        server.stop()

    elapsed = max(load["ended"] for load in loads) - began
    ordered = sorted(x for load in loads for x in load["latencies"])
    operations = len(ordered)
    def count(sql: str) -> int:
        return query(database_url, sql)

    result = {
        "database": "postgresql" if databases.postgres else "sqlite", "mode": mode, "instances": instances,
        "clients": clients,
        "counters": counters, "listeners": listening, "seconds": round(elapsed, 2), "operations": operations,
        "ops_per_s": round(operations / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[min(operations - 1, int(operations * 0.99))] * 1000, 1) if ordered else None,
        "issued": count("SELECT COUNT(*) FROM ticket") - issued_before,
        "called": count("SELECT COUNT(*) FROM ticket_event WHERE type='called'") - called_before,
        "duplicates": count("SELECT COALESCE(SUM(n - 1), 0) FROM "
                            "(SELECT COUNT(*) n FROM ticket GROUP BY branch_id, local_date, label) t"),
        "double_calls": count("SELECT COALESCE(SUM(n - 1), 0) FROM "
                              "(SELECT COUNT(*) n FROM ticket_event WHERE type='called' GROUP BY ticket_id) t"),
        "errors": sum(load["errors"] for load in loads),
        "error_samples": [e for load in loads for e in load["error_samples"]][:3],
        "server_cpu_ms_per_op": (round((cpu_after - cpu_before) * 1000 / operations, 2)
                                 if cpu_after is not None and operations else None),
        "client_cpu_ms_per_op": round(sum(load["cpu_s"] for load in loads) * 1000 / operations, 2) if operations else None,
        "waiting_before": phones, "workers": args.workers, "processes": processes,
    }
    if listening:
        result["listeners_joined"] = joined["listeners"]
        result["pushes"] = pushes
    if databases.postgres is None:
        for suffix in ("", "-wal", "-shm"):
            Path(database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    return result


def describe(result: dict, baseline: dict | None) -> str:
    ratio = result["ops_per_s"] / baseline["ops_per_s"] if baseline and baseline["ops_per_s"] else None
    result["ratio_vs_1_client"] = round(ratio, 2) if ratio is not None else None
    where = (f"{'PostgreSQL' if result['database'] == 'postgresql' else 'SQLite'}, {result['mode']}, {result['instances']} "
             f"instance{'s' if result['instances'] > 1 else ''}, {result['clients']} client"
             f"{'s' if result['clients'] > 1 else ''} + {result['counters']} counter{'s' if result['counters'] > 1 else ''}")
    if result["waiting_before"]:
        where += (f", display + {result['waiting_before']} phones" if result["listeners"]
                  else f", no listeners ({result['waiting_before']} waiting before)")
    cpu = result["server_cpu_ms_per_op"]
    line = (f"{where}: {result['ops_per_s']} ops/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"issued {result['issued']}, called {result['called']}, duplicate labels {result['duplicates']}, "
            f"double calls {result['double_calls']}, client errors {result['errors']}, "
            f"x{ratio or 0:.2f} vs 1 client, server CPU {cpu if cpu is not None else 'n/a'} ms/op "
            f"(load generator {result['client_cpu_ms_per_op']} ms/op)")
    if result.get("pushes"):
        pushes = result["pushes"]
        display = ", ".join(f"{n} {name}" for name, n in sorted(pushes["display"].items())) or "none"
        phones = ", ".join(f"{n} {name}" for name, n in pushes["phones"].items()) or "none"
        line += (f"; pushes received: display {display}; phones {phones}, {pushes['phones_reached']} of "
                 f"{pushes['phones_joined']} joined phones reached (display joined: {pushes['display_joined']})")
    if result["error_samples"]:
        line += "\n  errors, e.g.: " + "; ".join(result["error_samples"])
    return line


def goal_line(runs: list[dict], mode: str) -> tuple[str, dict]:
    """The goal in one mode: its SQLite run at GOAL clients; duplicates and double calls over every run."""
    target = next((r for r in runs if r["database"] == "sqlite" and r["mode"] == mode
                   and r["clients"] == GOAL["clients"] and not r["waiting_before"]), None)
    duplicates = sum(r["duplicates"] for r in runs)
    double_calls = sum(r["double_calls"] for r in runs)
    if target is None:
        return (f"goal ({mode}): n/a (it is judged on SQLite at {GOAL['clients']} clients without --displays); "
                f"duplicates {duplicates}, double calls {double_calls} (all runs)"), {"met": None}
    checks = {"ops_per_s": target["ops_per_s"] >= GOAL["ops_per_s"], "p99_ms": target["p99_ms"] < GOAL["p99_ms"],
              "ratio": (target["ratio_vs_1_client"] or 0) >= GOAL["ratio"], "duplicates": duplicates == 0,
              "double_calls": double_calls == 0}
    mark = {True: "yes", False: "NO"}
    line = (f"goal (SQLite, {mode}, {GOAL['clients']} clients): {target['ops_per_s']} ops/s >= {GOAL['ops_per_s']} "
            f"{mark[checks['ops_per_s']]}; p99 {target['p99_ms']} ms < {GOAL['p99_ms']} {mark[checks['p99_ms']]}; "
            f"x{target['ratio_vs_1_client']} vs 1 client >= {GOAL['ratio']} {mark[checks['ratio']]}; "
            f"duplicates {duplicates} (all runs) {mark[checks['duplicates']]}; double calls {double_calls} "
            f"{mark[checks['double_calls']]}: {'met' if all(checks.values()) else 'not met'}")
    return line, {**GOAL, "checks": checks, "met": all(checks.values())}


def push_cost(runs: list[dict]) -> list[str]:
    """With listeners against the same configuration without: what the pushes cost."""
    lines = []
    for loud in (r for r in runs if r["listeners"]):
        quiet = next(r for r in runs if not r["listeners"] and all(
            r[k] == loud[k] for k in ("database", "mode", "instances", "clients")))
        cpu = (f"{loud['server_cpu_ms_per_op'] - quiet['server_cpu_ms_per_op']:+.2f} ms/op"
               if loud["server_cpu_ms_per_op"] is not None and quiet["server_cpu_ms_per_op"] is not None else "n/a")
        lines.append(f"pushes cost ({loud['database']}, {loud['mode']}, {loud['instances']} instance(s), "
                     f"{loud['clients']} clients): "
                     f"ops/s x{loud['ops_per_s'] / quiet['ops_per_s']:.2f}, "
                     f"p99 x{loud['p99_ms'] / quiet['p99_ms']:.2f}, server CPU {cpu}")
    return lines


def run_database(args, workdir: Path, postgres, instance_counts: list[int], runs: list[dict]) -> None:
    databases = Databases(workdir, postgres)
    for mode in args.modes:
        baseline = None
        for instances in instance_counts:
            for clients in args.clients:
                if clients == 1 and instances > 1:
                    continue  # one client reaches one instance: the 1-instance figure
                for listening in ((False, True) if args.displays else (False,)):
                    result = measure(databases, args, mode, clients, instances, listening)
                    if baseline is None:
                        baseline = result  # the mode's first run: 1 client, 1 instance, no listeners
                    print(describe(result, baseline), flush=True)
                    runs.append(result)


def int_list(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",")} | {1})  # the 1 baseline is always measured, first


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int_list, default="1,20,50",
                        help="kiosk clients issuing tickets, a list (1 is always measured: the baseline)")
    parser.add_argument("--counters", type=int, default=6, help="counter clients calling next and finishing")
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed window")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of the same load before each window, not counted")
    parser.add_argument("--modes", type=lambda text: text.split(","), default="threading,gevent",
                        help="server modes, a list: threading (gthread) and/or gevent")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: also PostgreSQL, after SQLite, in the same run")
    parser.add_argument("--instances", type=int_list, default="1,2", help="PostgreSQL: gunicorn instances, a list")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--displays", action="store_true",
                        help="each configuration also with a display and phones joined over Socket.IO")
    parser.add_argument("--phones", type=int, default=200, help="--displays: phones, each following its own ticket")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn workers per instance (one in production; see docs/pages/operating/deployment.md)")
    args = parser.parse_args()

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        run_database(args, Path(workdir), None, [1], runs)
        if args.db == "postgresql":
            postgres = start_postgres()
            try:
                run_database(args, Path(workdir), postgres, args.instances, runs)
            finally:
                postgres.stop()
    for line in push_cost(runs):
        print(line)
    goals = {}
    for mode in args.modes:
        line, goals[mode] = goal_line(runs, mode)
        print(line)
    print(json.dumps({"cores": os.cpu_count(), "processes": args.processes, "seconds": args.seconds,
                      "warmup": args.warmup, "goal": goals, "runs": runs}))


if __name__ == "__main__":
    main()
