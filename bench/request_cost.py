"""What one request costs the server, counted rather than timed: Python function calls and SQL
statements per issue, call-next and finish, against a floor request measured in the same run.

    python bench/request_cost.py [--requests 200] [--waiting 300]

The app runs in process (Flask's test client) on a copy of the seeded demo database (SQLite file,
as bench/issuance.py makes it), with `--waiting` tickets issued first. Each operation runs
`--requests` times under cProfile, which counts every Python function call exactly, and SQLite's
own trace callback counts every statement it runs (BEGIN and COMMIT included, whether they come
through the engine or straight from the driver). Unlike a timing, these counts do not move with the machine's other work, so two
versions of the code compare exactly, one run each. The CPU time per request is printed beside
them (measured without the profiler), also as a multiple of the floor's: the machine's other work
moves the milliseconds by a third from run to run, the multiple much less.

The floor is GET /healthz: the same middleware (request logging, security headers, Socket.IO's
WSGI wrapper) and one `SELECT 1`. The last line is one JSON object with every figure.
"""
import argparse
import cProfile
import json
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

from issuance import Databases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests per operation")
    parser.add_argument("--waiting", type=int, default=300, help="tickets issued before measuring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="request-cost-") as workdir:
        databases = Databases(Path(workdir))
        os.environ.update(QUEUE_APP_DATABASE_URL=databases.fresh(), QUEUE_APP_SECRET_KEY="bench-secret",
                          QUEUE_APP_RUN_SCHEDULER="0", QUEUE_APP_RATELIMIT_ENABLED="0")
        figures = measure(databases.kiosk_token, args.requests, args.waiting)
    floor = figures["floor"]
    for name, figure in figures.items():
        print(f"{name:10s} {figure['calls']:7.0f} Python calls ({figure['calls'] / floor['calls']:4.1f}x the floor), "
              f"{figure['statements']:4.1f} SQL statements, {figure['cpu_ms']:5.2f} ms CPU per request "
              f"({figure['cpu_ms'] / floor['cpu_ms']:3.1f}x the floor)")
    print(json.dumps({"requests": args.requests, "waiting": args.waiting, "operations": figures}))


def measure(kiosk_token: str, requests: int, waiting: int) -> dict:
    from sqlalchemy import event

    from queue_app import create_app
    from queue_app.core.extensions import db

    app = create_app()
    client = app.test_client()
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "connect", lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(
            lambda _sql: statements.__setitem__(0, statements[0] + 1)))
        db.engine.dispose()  # connections made before the hook are made again with it
    token = client.post("/api/v1/auth/token", json={"email": "admin@demo.test", "password": "demo-password"}).json
    staff = {"Authorization": f"Bearer {token['token']}"}
    kiosk = {"Authorization": f"Bearer {kiosk_token}"}
    counters = [c["id"] for c in client.get("/api/v1/branches/demo/counters", headers=staff).json]
    for counter_id in counters:
        client.patch(f"/api/v1/counters/{counter_id}", headers=staff, json={"services": ["A", "B", "C"], "state": "open"})
    codes = random.Random(1)

    def expect(response, status: int):
        if response.status_code != status:
            sys.exit(f"{response.request.method} {response.request.path}: {response.status_code} {response.data[:200]!r}")
        return response

    def floor(_i):
        expect(client.get("/healthz"), 200)

    def issue(_i):
        expect(client.post("/api/v1/branches/demo/tickets", headers=kiosk, json={"service": codes.choice("ABC")}), 201)

    called: list[int] = []

    def call_next(i):
        called.append(expect(client.post(f"/api/v1/counters/{counters[i % len(counters)]}/call-next",
                                         headers=staff), 200).json["id"])

    def finish(_i):  # the ticket just called
        expect(client.post(f"/api/v1/tickets/{called[-1]}/finish", headers=staff), 200)

    for i in range(waiting):
        issue(i)
    figures = {}
    # Call and finish alternate (a counter calls again only once its ticket is finished), each
    # under its own profiler.
    for name in ("floor", "issue", "call-next", "finish"):
        figures[name] = {"calls": 0, "statements": 0, "cpu_s": 0.0}
    profilers = {name: cProfile.Profile() for name in figures}

    def run(name, operation, i, profiled: bool):
        began, before = time.process_time(), statements[0]
        if profiled:
            profilers[name].enable()
        operation(i)
        if profiled:
            profilers[name].disable()
            figures[name]["statements"] += statements[0] - before
        else:
            figures[name]["cpu_s"] += time.process_time() - began

    for profiled in (False, True):
        for i in range(requests):
            run("floor", floor, i, profiled)
            run("issue", issue, i, profiled)
        for i in range(requests):
            run("call-next", call_next, i, profiled)
            run("finish", finish, i, profiled)
    return {name: {"calls": pstats.Stats(profilers[name]).total_calls / requests,
                   "statements": figure["statements"] / requests,
                   "cpu_ms": figure["cpu_s"] / requests * 1000}
            for name, figure in figures.items()}


if __name__ == "__main__":
    main()
