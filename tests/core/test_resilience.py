"""Crashes and outages with real processes: the app server killed with SIGKILL under load, Redis
stopped or frozen under two instances, PostgreSQL restarted under load."""
import json
import signal
import threading
import time
import uuid
from collections import Counter as Tally

import pytest
import requests
import socketio
from servers import AppServer, PostgresServer, RedisServer, cli, server_env
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from queue_app.tickets.models import Ticket

KIOSK_CLIENTS = 6

pytestmark = pytest.mark.slow


def wait_until(predicate, what: str, timeout: float = 120) -> None:
    """Waits for progress the test needs; fails (instead of hanging) if it never comes."""
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"gave up waiting: {what}"
        time.sleep(0.01)


def prepare(env) -> str:
    cli(env, "init-db")
    return cli(env, "seed-demo").stdout.strip().splitlines()[-1].split(": ")[1]


def staff_headers(base) -> dict:
    token = requests.post(base + "/api/v1/auth/token", json={"email": "staff1@demo.test", "password": "demo-password"},
                          timeout=10).json()["token"]
    return {"Authorization": f"Bearer {token}"}


# --- the app server killed mid-load ----------------------------------------------------------------

def _database_url(kind, tmp_path, request):
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database("crash_" + uuid.uuid4().hex[:12])


# Each test below picks its own database (a SQLite file, the shared PostgreSQL cluster or one of its
# own), whatever the pass: they run once, on the SQLite pass.
@pytest.mark.parametrize("kind", [pytest.param("sqlite", marks=pytest.mark.sqlite_only),
                                  pytest.param("postgresql", marks=pytest.mark.own_postgres)])
def test_a_server_killed_mid_load_loses_no_confirmed_ticket_and_reuses_no_label(kind, tmp_path, request):
    url = _database_url(kind, tmp_path, request)
    env = server_env(url)
    kiosk = {"Authorization": f"Bearer {prepare(env)}"}
    server = AppServer(env, tmp_path / "server.log").start()
    confirmed = []  # (id, label) of every 201 a client received
    outcomes = Tally()
    lock = threading.Lock()
    stop = threading.Event()

    def kiosk_client():
        with requests.Session() as http:
            while not stop.is_set():
                try:
                    answer = http.post(server.base + "/api/v1/branches/demo/tickets", json={"service": "A"},
                                       headers=kiosk, timeout=10)
                except requests.RequestException:
                    outcomes["no answer"] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    outcomes[answer.status_code] += 1
                    if answer.status_code == 201:
                        confirmed.append((answer.json()["id"], answer.json()["label"]))

    clients = [threading.Thread(target=kiosk_client) for _ in range(KIOSK_CLIENTS)]
    try:
        for c in clients:
            c.start()
        wait_until(lambda: len(confirmed) >= 80, "80 tickets before the kill")
        server.kill()  # SIGKILL: no shutdown, requests in flight are cut off
        before_kill = len(confirmed)
        server.start()
        wait_until(lambda: len(confirmed) >= before_kill + 80, "80 tickets after the restart")
        stop.set()
        for c in clients:
            c.join()

        assert outcomes["no answer"] > 0, "the kill should have cut off some requests"
        assert set(outcomes) <= {201, "no answer"}, outcomes
        labels = Tally(label for _id, label in confirmed)
        assert max(labels.values()) == 1, "a label was given to two tickets"
        engine = create_engine(url)
        with Session(engine) as session:
            stored = {t.id: t for t in session.scalars(select(Ticket))}
            for ticket_id, label in confirmed:
                assert ticket_id in stored and stored[ticket_id].label == label, f"ticket {label} was lost"
            assert len({(t.local_date, t.label) for t in stored.values()}) == len(stored)
            expected = [t.label for t in sorted(stored.values(), key=lambda t: (t.sort_key, t.id))
                        if t.status == "waiting"]
        engine.dispose()
        # Tickets the server committed but whose answer was cut off may exist too: never more
        # than the requests that got no answer.
        assert len(stored) - len(confirmed) <= outcomes["no answer"]

        # The queue order survived: counters call every waiting ticket once, in order.
        staff = staff_headers(server.base)
        counters = requests.get(server.base + "/api/v1/branches/demo/counters", headers=staff, timeout=10).json()
        counter = next(c for c in counters if c["services"] == ["A"] or c["services"][0] == "A")
        called = []
        while True:
            answer = requests.post(server.base + f"/api/v1/counters/{counter['id']}/call-next", headers=staff,
                                   timeout=10)
            if answer.status_code == 204:
                break
            assert answer.status_code == 200, answer.text
            called.append(answer.json()["label"])
            requests.post(server.base + f"/api/v1/tickets/{answer.json()['id']}/finish", headers=staff, timeout=10)
        assert called == expected and len(called) == len(set(called))
        after = requests.post(server.base + "/api/v1/branches/demo/tickets", json={"service": "A"}, headers=kiosk,
                              timeout=10).json()["label"]
        assert int(after[1:]) > max(int(label[1:]) for label in labels), "numbering went backwards"
    finally:
        stop.set()
        server.stop()


# --- Redis stopped or frozen under two instances -------------------------------------------------

class Display:
    """A lobby display connected to one instance, recording the `called` labels it hears."""

    def __init__(self, base):
        self.called: list[str] = []
        self.queue_pushes = 0
        self.heard = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("called", self._on_called, namespace="/live")
        self.client.on("queue", self._on_queue, namespace="/live")
        self.client.connect(base, namespaces=["/live"], transports=["websocket"], wait_timeout=10)
        assert self.client.call("join", {"branch": "demo"}, namespace="/live", timeout=10)["ok"]

    def _on_called(self, data):
        with self.heard:
            self.called.append(data["label"])
            self.heard.notify_all()

    def _on_queue(self, _data):
        with self.heard:
            self.queue_pushes += 1
            self.heard.notify_all()

    def wait_called(self, label, timeout=15) -> bool:
        with self.heard:
            return self.heard.wait_for(lambda: label in self.called, timeout)


def issue_and_call(base, kiosk, staff, counter_id) -> str:
    label = requests.post(base + "/api/v1/branches/demo/tickets", json={"service": "A"}, headers=kiosk,
                          timeout=10)
    assert label.status_code == 201, label.text
    called = requests.post(base + f"/api/v1/counters/{counter_id}/call-next", headers=staff, timeout=10)
    assert called.status_code == 200, called.text
    finished = requests.post(base + f"/api/v1/tickets/{called.json()['id']}/finish", headers=staff, timeout=10)
    assert finished.status_code == 200
    return called.json()["label"]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_with_redis_down_each_instance_keeps_serving_and_pushing_to_its_own_clients(outage, tmp_path):
    redis = RedisServer(tmp_path)
    env = server_env(f"sqlite:///{tmp_path / 'two.sqlite'}", QUEUE_APP_MESSAGE_QUEUE=redis.url(0))
    kiosk = {"Authorization": f"Bearer {prepare(env)}"}
    servers = [AppServer(env, tmp_path / f"server-{n}.log") for n in "ab"]
    displays = []
    try:
        for server in servers:
            server.start()
        a, b = servers
        staff = staff_headers(a.base)
        counters = requests.get(a.base + "/api/v1/branches/demo/counters", headers=staff, timeout=10).json()
        counter_a = next(c["id"] for c in counters if c["name"] == "Counter 1")
        counter_b = next(c["id"] for c in counters if c["name"] == "Counter 2")
        on_a, on_b = Display(a.base), Display(b.base)
        displays = [on_a, on_b]
        label = issue_and_call(a.base, kiosk, staff, counter_a)
        assert on_b.wait_called(label), "with Redis up, a call on A reaches B"

        if outage == "stopped":
            redis.stop()
        else:
            redis.process.send_signal(signal.SIGSTOP)  # hung: connections open, no answers
        for _ in range(3):  # several changes: each instance serves and pushes to its own display
            label_a = issue_and_call(a.base, kiosk, staff, counter_a)
            assert on_a.wait_called(label_a), f"A's display missed {label_a} with Redis {outage}"
            label_b = issue_and_call(b.base, kiosk, staff, counter_b)
            assert on_b.wait_called(label_b), f"B's display missed {label_b} with Redis {outage}"
        health = requests.get(a.base + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "degraded"

        if outage == "stopped":
            redis.start()
        else:
            redis.process.send_signal(signal.SIGCONT)
        # Back: within a while (the listener reconnects with backoff), A's changes reach B again.
        deadline = time.time() + 90
        while True:
            label = issue_and_call(a.base, kiosk, staff, counter_a)
            if on_b.wait_called(label, timeout=3):
                break
            assert time.time() < deadline, "instances did not find each other again after Redis came back"
        assert requests.get(a.base + "/healthz", timeout=10).json()["status"] == "ok"
    finally:
        for display in displays:
            display.client.disconnect()
        for server in servers:
            server.stop()
        redis.stop()


# --- PostgreSQL restarted under load ---------------------------------------------------------------

@pytest.mark.own_postgres
def test_a_postgres_restart_answers_503_to_requests_in_flight_and_the_next_ones_succeed(tmp_path, pg_server):
    database = PostgresServer(pg_server.bindir)  # its own server: the shared one must keep running
    try:
        url = database.create_database("restart")
        env = server_env(url)
        kiosk = {"Authorization": f"Bearer {prepare(env)}"}
        server = AppServer(env, tmp_path / "server.log").start()
        statuses = Tally()
        bodies = []
        confirmed = []
        stop = threading.Event()
        lock = threading.Lock()

        def kiosk_client():
            with requests.Session() as http:
                while not stop.is_set():
                    answer = http.post(server.base + "/api/v1/branches/demo/tickets", json={"service": "A"},
                                       headers=kiosk, timeout=30)
                    with lock:
                        statuses[answer.status_code] += 1
                        if answer.status_code == 201:
                            confirmed.append(answer.json()["id"])
                        elif len(bodies) < 5:
                            bodies.append((answer.status_code, answer.headers.get("Retry-After"), answer.text))

        clients = [threading.Thread(target=kiosk_client) for _ in range(4)]
        try:
            for c in clients:
                c.start()
            wait_until(lambda: len(confirmed) >= 30, "30 tickets before the restart")
            database.halt("fast")  # ends every session: queries in flight fail
            down = requests.get(server.base + "/healthz", timeout=10)
            wait_until(lambda: sum(statuses.values()) - len(confirmed) >= 10, "10 refused requests", timeout=30)
            database.start()
            count = len(confirmed)
            wait_until(lambda: len(confirmed) >= count + 30, "30 tickets after the restart")
        finally:
            stop.set()
            for c in clients:
                c.join()
        assert down.status_code == 503 and down.json()["database"].startswith("error")
        assert set(statuses) == {201, 503}, statuses  # never a 500, never a dropped connection
        code, retry_after, body = bodies[0]
        assert code == 503 and retry_after == "2", (code, body[:300])
        assert json.loads(body)["error"]["code"] == "database_unavailable" and json.loads(body)["error"]["message"]
        assert requests.get(server.base + "/healthz", timeout=10).status_code == 200
        engine = create_engine(url)
        with Session(engine) as session:
            stored = set(session.scalars(select(Ticket.id)))
        engine.dispose()
        assert set(confirmed) <= stored
        server.stop()
    finally:
        database.stop()
