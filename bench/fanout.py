"""Socket.IO fan-out: how fast a call reaches every phone and display in one branch room.

Starts the real server (gunicorn, one worker) on a fresh SQLite file, connects N Socket.IO
clients to branch `demo` from G load-generator processes (asyncio clients), then triggers E calls
through REST and measures, for every client, the time from the REST response to the receipt of
the `called` event. Prints connected/missed counts and p50/p99, the same figures for a baseline
of 1 client measured in the same run, the memory (RSS) of each instance, and a last line of JSON.

    pip install -e '.[bench]'
    python bench/fanout.py [--clients 500] [--mode threading|gevent] [--events 20] [--generators 2]

Several instances (`--instances 2`) run as production does: a throwaway PostgreSQL and Redis
(from the binaries), one gunicorn per instance with `QUEUE_APP_MESSAGE_QUEUE`; the clients are
split evenly over the instances and every call is made through the first one, so half of the
clients hear it through Redis:

    python bench/fanout.py --instances 2 --clients 2000 --mode gevent
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from servers import ROOT, Redis, free_port, start_postgres, wait_until_serving, worker_rss_mb


def start_servers(workdir: Path, mode: str, clients: int, instances: int, database_url: str | None,
                  message_queue: str | None):
    """`instances` gunicorn processes on one database; (processes, base URLs, kiosk token)."""
    ports = [free_port() for _ in range(instances)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": database_url or f"sqlite:///{workdir / 'fanout.sqlite'}",
           "QUEUE_APP_SECRET_KEY": "bench-secret", "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_BASE_URL": bases[0],
           "QUEUE_APP_ASYNC_MODE": mode, "QUEUE_APP_RATELIMIT_ENABLED": "0"}
    if message_queue:
        env["QUEUE_APP_MESSAGE_QUEUE"] = message_queue
    cli = [sys.executable, "-m", "queue_app.cli"]
    subprocess.run(cli + ["init-db"], env=env, cwd=ROOT, check=True, capture_output=True)
    seeded = subprocess.run(cli + ["seed-demo"], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    kiosk_token = seeded.stdout.strip().splitlines()[-1].split(": ")[1]
    per_instance = -(-clients // instances)
    if mode == "gevent":
        worker = ["-k", "gevent", "--worker-connections", str(max(1000, per_instance * 2 + 100))]
    else:  # threading: each WebSocket holds a thread
        worker = ["--threads", str(per_instance + 50)]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", *worker, "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--timeout", "120", "wsgi:app"],
        env=env, cwd=ROOT,
    ) for port in ports]
    wait_until_serving(bases, processes)
    return processes, bases, kiosk_token


def generator(instance: int, base: str, count: int, ready, go, results, expected_events: int, deadline_s: float,
              client_kind: str = "raw"):
    """One load-generator process: `count` asyncio clients; reports (instance, {label: [receipt times]})."""
    import gc

    async def main():
        receipts: dict[str, list[float]] = {}
        connect = _raw_client if client_kind == "raw" else _socketio_client
        clients = [c for c in await _in_waves(count, lambda: connect(base, receipts)) if c is not None]
        gc.freeze()  # a full GC pass over thousands of clients would dominate the tail
        ready.put(len(clients))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        end = time.time() + deadline_s
        while time.time() < end and sum(len(v) for v in receipts.values()) < expected_events * len(clients):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        results.put((instance, receipts))
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    asyncio.run(main())


async def _in_waves(count: int, connect) -> list:
    found = []
    for start in range(0, count, 50):  # connect in waves, as phones would over a minute
        found += await asyncio.gather(*(connect() for _ in range(min(50, count - start))))
    return found


class _SocketIOClient:
    """python-socketio's own client: every packet decoded, as a browser would."""

    def __init__(self, client):
        self.client = client

    async def close(self):
        await self.client.disconnect()


async def _socketio_client(base: str, receipts: dict):
    import socketio

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
        return _SocketIOClient(client)
    except Exception:
        await client.disconnect()
        return None


CALLED = '42/live,["called",'


class _RawClient:
    """Engine.IO 4 / Socket.IO 5 over a bare WebSocket (aiohttp): the same frames on the wire, but
    only `called` is decoded and everything else is skipped by its prefix, so a generator process
    can hold a thousand clients without its own parsing dominating the measured latency."""

    def __init__(self, session, socket, task):
        self.session, self.socket, self.task = session, socket, task

    async def close(self):
        self.task.cancel()
        await self.socket.close()
        await self.session.close()


async def _raw_client(base: str, receipts: dict):
    import aiohttp

    session = aiohttp.ClientSession()
    try:
        socket = await session.ws_connect(base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                          timeout=30, autoping=False)
        opened = await asyncio.wait_for(socket.receive_str(), 30)  # "0{sid, pingInterval, ...}"
        assert opened.startswith("0")
        await socket.send_str("40/live,")
        while not (await asyncio.wait_for(socket.receive_str(), 30)).startswith("40/live,"):
            pass
        await socket.send_str('42/live,["join",{"branch":"demo"}]')
        while not (await asyncio.wait_for(socket.receive_str(), 30)).startswith('42/live,["queue"'):
            pass
    except Exception:
        await session.close()
        return None

    async def listen():
        async for message in socket:
            data = message.data
            if data == "2":  # the server's ping
                await socket.send_str("3")
            elif data.startswith(CALLED):
                label = json.loads(data[len("42/live,"):])[1]["label"]
                receipts.setdefault(label, []).append(time.time())

    return _RawClient(session, socket, asyncio.get_running_loop().create_task(listen()))


def measure(clients: int, mode: str, events: int, generators: int, interval: float, instances: int = 1,
            database_url: str | None = None, message_queue: str | None = None, client_kind: str = "raw") -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        servers, bases, kiosk_token = start_servers(Path(workdir), mode, clients, instances, database_url,
                                                    message_queue)
        base = bases[0]  # every call goes through the first instance
        ctx = multiprocessing.get_context("spawn")
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        shares = [clients // generators + (1 if i < clients % generators else 0) for i in range(generators)]
        # Generator i connects to instance i % instances: the clients split evenly over them.
        procs = [ctx.Process(target=generator, args=(i % instances, bases[i % instances], n, ready, go, results,
                                                     events, 60 + events * interval, client_kind))
                 for i, n in enumerate(shares) if n]
        rss = []
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
            rss = [worker_rss_mb(server.pid) for server in servers]  # with every client still connected
            by_instance: dict[int, dict[str, list[float]]] = {}
            for _ in procs:
                instance, found = results.get(timeout=600)
                into = by_instance.setdefault(instance, {})
                for label, times in found.items():
                    into.setdefault(label, []).extend(times)
            for proc in procs:
                proc.join(timeout=30)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=10)

    def latencies(found: dict[str, list[float]]) -> list[float]:
        return sorted((t - responded[label]) * 1000 for label, times in found.items() if label in responded
                      for t in times)

    every = sorted(x for found in by_instance.values() for x in latencies(found))
    return {
        "mode": mode, "instances": instances, "clients": clients, "connected": connected, "events": events,
        "received": len(every), "missed": connected * events - len(every), **_percentiles(every),
        "per_instance": {i: _percentiles(latencies(by_instance.get(i, {}))) for i in range(instances)},
        "rss_mb": [current for current, _peak in rss], "peak_rss_mb": [peak for _current, peak in rss],
    }


def _percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)}

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--mode", choices=["threading", "gevent"], default="threading")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between calls")
    parser.add_argument("--client", choices=["raw", "socketio"], default="raw",
                        help="raw: bare WebSocket clients decoding only `called` (measures the server); "
                             "socketio: python-socketio clients decoding everything")
    parser.add_argument("--instances", type=int, default=1,
                        help="app instances; more than one runs PostgreSQL and a Redis message queue")
    args = parser.parse_args()
    generators = max(args.generators, args.instances)

    postgres = redis = None
    message_queue = None
    if args.instances > 1:
        postgres, redis = start_postgres(), Redis()
        message_queue = redis.url
    try:
        def database(name: str) -> str | None:
            return postgres.create_database(name) if postgres else None

        baseline = measure(1, args.mode, min(args.events, 10), 1, args.interval, 1, database("baseline"),
                           client_kind=args.client)
        print(f"baseline ({args.mode}, 1 client, 1 instance): p50 {baseline['p50_ms']} ms, "
              f"p99 {baseline['p99_ms']} ms, missed {baseline['missed']}")
        result = measure(args.clients, args.mode, args.events, generators, args.interval, args.instances,
                         database("fanout"), message_queue, args.client)
    finally:
        if redis:
            redis.stop()
        if postgres:
            postgres.stop()
    print(f"{args.mode}, {args.instances} instance(s): {result['connected']}/{result['clients']} clients connected, "
          f"{result['events']} calls, {result['received']} receipts, {result['missed']} missed; "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    for instance, figures in result["per_instance"].items():
        via = "the instance called" if instance == 0 else "through Redis"
        print(f"  instance {instance + 1} ({via}): p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
              f"RSS {result['rss_mb'][instance]} MiB (peak {result['peak_rss_mb'][instance]} MiB)")
    ratio = (result["p99_ms"] / baseline["p99_ms"]) if result["p99_ms"] and baseline["p99_ms"] else None
    print(f"p99 vs 1-client baseline: x{ratio:.1f}" if ratio else "p99 vs baseline: n/a")
    print(f"goal: 2,000 clients, p99 < 250 ms, 0 missed; cores: {os.cpu_count()}")
    print(json.dumps({**result, "client": args.client, "baseline_p99_ms": baseline["p99_ms"],
                      "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
