"""Kiosks issuing at once just after a restart at a long line, against the same burst a few
seconds later, on the real server on loopback (SQLite, one gunicorn worker, as production runs it).

After a restart no played queue is kept (tickets/played_queue.py), so the first issues cannot be
one step on it: a full run of the whole line is needed. The same happens at a new local day, at
new learned parameters, and when a replay is far overdue. This measures what the kiosks issuing at
that moment wait: C kiosk clients (threads, one keep-alive connection each, started together at a
barrier) issue one ticket each, right after the restart and again once the kept queue serves.

    python bench/restart_burst.py [--waiting 2000] [--kiosks 20] [--rounds 3]

One line per burst (p50, max and the server CPU for the burst) and the ratio of the first burst's
max to the settled one's, measured in the same run; the last line is one JSON object.
"""
import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from issuance import ISSUE, Client, Databases, Instances, issue_tickets
from servers import cpu_seconds

SETTLED_AFTER_S = 5.0  # the first full run kept and its replay done: issues are one step again


def burst(base: str, kiosk_token: str, kiosks: int, pids: list[int]) -> dict:
    clients = [Client(base, kiosk_token) for _ in range(kiosks)]
    for client in clients:  # connected before the barrier: only the issue is timed
        client.request("GET", "/healthz")
    start, latencies, errors = threading.Barrier(kiosks), [], []

    def kiosk(n: int):
        start.wait()
        began = time.perf_counter()
        status, data = clients[n].request("POST", ISSUE, json.dumps({"service": "ABC"[n % 3]}).encode())
        latencies.append(time.perf_counter() - began)
        if status != 201:
            errors.append(f"{status} {data[:200]!r}")

    cpu_before = cpu_seconds(pids)
    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(kiosks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = cpu_seconds(pids) - cpu_before
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1),
            "server_cpu_ms": round(cpu * 1000, 1), "errors": errors}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, default=2000, help="tickets waiting before the restart")
    parser.add_argument("--kiosks", type=int, default=20, help="kiosks issuing at once")
    parser.add_argument("--rounds", type=int, default=3, help="restarts (each: a first burst and a settled one)")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="restart-burst-") as workdir:
        databases = Databases(Path(workdir))
        database_url = databases.fresh()
        server = Instances(database_url, 1, 32, 1)
        try:
            issue_tickets(server.bases, databases.kiosk_token, args.waiting)
        finally:
            server.stop()
        for _ in range(args.rounds):
            server = Instances(database_url, 1, 32, 1)  # a restart: nothing kept
            try:
                pids = server.worker_pids()
                first = burst(server.bases[0], databases.kiosk_token, args.kiosks, pids)
                time.sleep(SETTLED_AFTER_S)
                settled = burst(server.bases[0], databases.kiosk_token, args.kiosks, pids)
            finally:
                server.stop()
            rounds.append({"after_restart": first, "settled": settled})
            for name, figures in (("after a restart", first), ("settled", settled)):
                print(f"{args.kiosks} kiosks at once, {name}: p50 {figures['p50_ms']} ms, max {figures['max_ms']} ms, "
                      f"server CPU {figures['server_cpu_ms']} ms, errors {len(figures['errors'])}")
    worst_first = statistics.median(r["after_restart"]["max_ms"] for r in rounds)
    settled_max = statistics.median(r["settled"]["max_ms"] for r in rounds)
    print(f"line of {args.waiting}: the first burst's max is x{worst_first / settled_max:.1f} the settled one's "
          f"(medians over {args.rounds} restarts: {worst_first:.0f} ms against {settled_max:.0f} ms)")
    print(json.dumps({"waiting": args.waiting, "kiosks": args.kiosks, "rounds": rounds,
                      "ratio_first_to_settled_max": round(worst_first / settled_max, 2)}))
    if any(r[k]["errors"] for r in rounds for k in r):
        sys.exit("client errors: see the JSON line")


if __name__ == "__main__":
    main()
