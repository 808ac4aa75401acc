"""Load workers that several client processes run in the production tests (module-level so
`multiprocessing` spawn can import them), how they are started together, and a phone following
its ticket over Socket.IO. The servers they load are started by tests/servers.py.
"""
import multiprocessing
import os
import threading
import time

import requests
import socketio

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


# --- starting them together -------------------------------------------------------------------

def run_processes(targets: list[tuple], timeout: float = 240) -> list:
    """Start one process per (function, args...), release them together, collect one result each."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    extra = {}
    if any(target[0] is counter_worker for target in targets):
        extra["kiosks_done"] = ctx.Event()
    started = []
    for function, *args in targets:
        if function is counter_worker:
            args = [*args, ready, go, extra["kiosks_done"], results]
        else:
            args = [*args, ready, go, results]
        started.append(ctx.Process(target=function, args=args))
    for process in started:
        process.start()
    for _ in started:
        ready.get(timeout=120)  # every process is up (imports done) before any request goes out
    go.set()
    collected = []
    kiosks = sum(1 for target in targets if target[0] is kiosk_worker)
    deadline = time.time() + timeout
    while len(collected) < len(started):
        item = results.get(timeout=max(1, deadline - time.time()))
        collected.append(item)
        if isinstance(item, dict) and item["kind"] == "kiosk":
            kiosks -= 1
            if kiosks == 0 and "kiosks_done" in extra:
                extra["kiosks_done"].set()
    for process in started:
        process.join(timeout=30)
        assert process.exitcode == 0
    return collected


def assert_each_ticket_issued_and_called_once(reports: list[dict], tickets: int) -> None:
    """What kiosk_worker and counter_worker reported: every ticket issued once with its own label,
    called by exactly one counter, and more than one counter really took part."""
    issued = [t for r in reports if r["kind"] == "kiosk" for t in r["issued"]]
    called = [t for r in reports if r["kind"] == "counter" for t in r["called"]]
    assert [r["errors"] for r in reports if r["errors"]] == []
    assert len(issued) == tickets
    assert len({label for _id, label in issued}) == tickets, "a label was given twice"
    assert len(called) == len({ticket_id for ticket_id, _ in called}), "two counters got the same ticket"
    assert sorted(called) == sorted(issued), "a ticket was never called"
    assert sum(1 for r in reports if r["kind"] == "counter" and r["called"]) >= 2  # the counters really raced


class Phone:
    """A Socket.IO client in a ticket's room on one instance, keeping what it is pushed."""

    def __init__(self, base: str, token: str):
        self.pushes, self.called = [], []
        self.changed = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("ticket", self._on_ticket, namespace="/live")
        self.client.connect(base, namespaces=["/live"], transports=["websocket"], wait_timeout=10)
        assert self.client.call("join", {"ticket": token}, namespace="/live", timeout=10)["ok"]

    def _on_ticket(self, data):
        self.pushes.append(data)
        self.changed.set()

    def wait_until(self, check, timeout: float = 30) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(check(push) for push in self.pushes):
                return True
            self.changed.wait(0.5)
            self.changed.clear()
        return False

    def close(self):
        self.client.disconnect()
