"""Socket.IO fan-out: how fast a call reaches every phone and display in one branch room.

Starts the real server (gunicorn, one worker) on a fresh SQLite file, connects N Socket.IO
clients to branch `demo` from G load-generator processes (asyncio clients), then triggers E calls
through REST and measures, for every client, the time from the REST response to the receipt of
the `called` event. Prints connected/missed counts and p50/p99, the same figures for a baseline
of 1 client measured in the same run, and a last line of JSON.

    pip install -e '.[bench]'
    python bench/fanout.py [--clients 500] [--mode threading|gevent] [--events 20] [--generators 2]
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, mode: str, clients: int):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{workdir / 'fanout.sqlite'}",
           "QUEUE_APP_SECRET_KEY": "bench-secret", "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_BASE_URL": base, "QUEUE_APP_ASYNC_MODE": mode}
    cli = [sys.executable, "-m", "queue_app.cli"]
    subprocess.run(cli + ["init-db"], env=env, cwd=ROOT, check=True, capture_output=True)
    seeded = subprocess.run(cli + ["seed-demo"], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    kiosk_token = seeded.stdout.strip().splitlines()[-1].split(": ")[1]
    if mode == "gevent":
        worker = ["-k", "gevent", "--worker-connections", str(max(1000, clients * 2 + 100))]
    else:  # threading: each WebSocket holds a thread
        worker = ["--threads", str(clients + 50)]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", *worker, "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--timeout", "120", "wsgi:app"],
        env=env, cwd=ROOT,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(base + "/api/v1/branches", timeout=1).ok:
                return process, base, kiosk_token
        except requests.ConnectionError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("server did not start")


def generator(base: str, count: int, ready, go, results, expected_events: int, deadline_s: float):
    """One load-generator process: `count` asyncio clients; reports {label: [receipt times]}."""
    import gc

    import socketio

    async def main():
        receipts: dict[str, list[float]] = {}
        clients = []

        async def one():
            client = socketio.AsyncClient(reconnection=False)
            joined = asyncio.Event()

            async def on_called(data):
                receipts.setdefault(data["label"], []).append(time.time())

            async def on_queue(_data):
                joined.set()

            client.on("called", on_called, namespace="/live")
            client.on("queue", on_queue, namespace="/live")
            try:
                await asyncio.wait_for(client.connect(base, namespaces=["/live"], transports=["websocket"]), 30)
                await client.emit("join", {"branch": "demo"}, namespace="/live")
                await asyncio.wait_for(joined.wait(), 30)
                clients.append(client)
            except Exception:
                await client.disconnect()

        for start in range(0, count, 50):  # connect in waves, as phones would over a minute
            await asyncio.gather(*(one() for _ in range(min(50, count - start))))
        gc.freeze()  # a full GC pass over thousands of clients would dominate the tail
        ready.put(len(clients))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        end = time.time() + deadline_s
        while time.time() < end and sum(len(v) for v in receipts.values()) < expected_events * len(clients):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        results.put(receipts)
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)

    asyncio.run(main())


def measure(clients: int, mode: str, events: int, generators: int, interval: float) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        server, base, kiosk_token = start_server(Path(workdir), mode, clients)
        ctx = multiprocessing.get_context("spawn")
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        shares = [clients // generators + (1 if i < clients % generators else 0) for i in range(generators)]
        procs = [ctx.Process(target=generator, args=(base, n, ready, go, results, events, 60 + events * interval))
                 for n in shares if n]
        try:
            for proc in procs:
                proc.start()
            connected = sum(ready.get(timeout=600) for _ in procs)
            token = requests.post(base + "/api/v1/auth/token",
                                  json={"email": "staff1@demo.test", "password": "demo-password"}).json()["token"]
            staff = {"Authorization": f"Bearer {token}"}
            kiosk = {"Authorization": f"Bearer {kiosk_token}"}
            counters = requests.get(base + "/api/v1/branches/demo/counters", headers=staff).json()
            counter = next(c for c in counters if "A" in c["services"])["id"]
            go.set()
            time.sleep(0.5)
            responded: dict[str, float] = {}
            for _ in range(events):
                requests.post(base + "/api/v1/branches/demo/tickets", json={"service": "A"}, headers=kiosk)
                called = requests.post(base + f"/api/v1/counters/{counter}/call-next", headers=staff)
                responded[called.json()["label"]] = time.time()
                requests.post(base + f"/api/v1/tickets/{called.json()['id']}/finish", headers=staff)
                time.sleep(interval)
            receipts: dict[str, list[float]] = {}
            for _ in procs:
                for label, times in results.get(timeout=600).items():
                    receipts.setdefault(label, []).extend(times)
            for proc in procs:
                proc.join(timeout=30)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            server.terminate()
            server.wait(timeout=10)
    latencies = sorted((t - responded[label]) * 1000 for label, times in receipts.items()
                       if label in responded for t in times)
    received = len(latencies)
    return {
        "mode": mode, "clients": clients, "connected": connected, "events": events,
        "received": received, "missed": connected * events - received,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1) if latencies else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--mode", choices=["threading", "gevent"], default="threading")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between calls")
    args = parser.parse_args()

    baseline = measure(1, args.mode, min(args.events, 10), 1, args.interval)
    print(f"baseline ({args.mode}, 1 client): p50 {baseline['p50_ms']} ms, p99 {baseline['p99_ms']} ms, "
          f"missed {baseline['missed']}")
    result = measure(args.clients, args.mode, args.events, args.generators, args.interval)
    print(f"{args.mode}: {result['connected']}/{result['clients']} clients connected, {result['events']} calls, "
          f"{result['received']} receipts, {result['missed']} missed; p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    ratio = (result["p99_ms"] / baseline["p99_ms"]) if result["p99_ms"] and baseline["p99_ms"] else None
    print(f"p99 vs 1-client baseline: x{ratio:.1f}" if ratio else "p99 vs baseline: n/a")
    print("goal: 2,000 clients connected on one instance, p99 < 250 ms, 0 missed")
    print(json.dumps({**result, "baseline_p99_ms": baseline["p99_ms"]}))


if __name__ == "__main__":
    main()
