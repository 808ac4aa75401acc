"""Socket.IO /live through Flask-SocketIO's test client, with changes made through REST."""
import time

import pytest

from queue_app.extensions import socketio
from queue_app.realtime import NAMESPACE

STAFF = "staff1@demo.test"


def live_client(app, client):
    return socketio.test_client(app, namespace=NAMESPACE, flask_test_client=client)


def _drain(live) -> list:
    live.kept = getattr(live, "kept", []) + live.get_received(NAMESPACE)
    return live.kept


def forget(live) -> None:
    _drain(live)
    live.kept = []


def received(live, name, timeout=5.0, where=lambda args: True):
    """Events of one name this client got so far, waiting up to `timeout` for one that matches."""
    deadline = time.monotonic() + timeout
    while True:
        got = [p["args"][0] for p in _drain(live) if p["name"] == name]
        if any(where(args) for args in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def settle(seconds=0.5):
    time.sleep(seconds)  # let the publisher finish a round before asserting that nothing came


@pytest.fixture
def display(app, client, seeded):
    live = live_client(app, client)
    assert live.emit("join", {"branch": "demo"}, namespace=NAMESPACE, callback=True) == {"ok": True, "room": "branch"}
    yield live
    live.disconnect(namespace=NAMESPACE)


def test_join_branch_sends_the_snapshot_at_once(display):
    snapshot = received(display, "queue", timeout=0)
    assert len(snapshot) == 1
    assert {w["service"] for w in snapshot[0]["waiting"]} == {"A", "B", "C"}
    assert [c["name"] for c in snapshot[0]["counters"]] == ["Counter 1", "Counter 2", "Counter 3"]
    assert snapshot[0]["recent"] == []


def test_bad_joins_are_refused_with_a_reason(app, client, seeded):
    live = live_client(app, client)
    assert live.emit("join", {"branch": "nowhere"}, namespace=NAMESPACE, callback=True)["error"]["code"] == "branch_not_found"
    assert live.emit("join", {"ticket": "bogus"}, namespace=NAMESPACE, callback=True)["error"]["code"] == "ticket_not_found"
    assert live.emit("join", "hello", namespace=NAMESPACE, callback=True)["error"]["code"] == "bad_join"
    assert _drain(live) == []


def test_a_call_pushes_called_to_the_branch_and_ticket_only_to_its_own_room(app, client, api, display):
    first, second, other = api.issue("A"), api.issue("A"), api.issue("B")
    phones = {}
    for ticket in (first, second, other):
        phones[ticket["label"]] = live_client(app, client)
        ack = phones[ticket["label"]].emit("join", {"ticket": ticket["token"]}, namespace=NAMESPACE, callback=True)
        assert ack == {"ok": True, "room": "ticket"}
        assert received(phones[ticket["label"]], "ticket", timeout=0)[0]["label"] == ticket["label"]
    settle()
    for live in (*phones.values(), display):
        forget(live)

    counter = api.counter_id("Counter 1")  # serves A and C
    assert api.call("POST", f"/counters/{counter}/call-next", STAFF).json["label"] == "A001"

    called = received(display, "called", where=lambda c: c["label"] == "A001")
    assert called[-1] == {"label": "A001", "counter": "Counter 1", "service": "A", "recall": False,
                          "at": called[-1]["at"]}
    assert "+08:00" in called[-1]["at"]
    mine = received(phones["A001"], "ticket", where=lambda t: t["status"] == "called")
    assert mine[-1]["status"] == "called" and mine[-1]["counter"] == "Counter 1"
    # The next in line hears that it moved up; it never hears about another ticket.
    moved = received(phones["A002"], "ticket", where=lambda t: t["position"] == 1)
    assert {t["label"] for t in moved} == {"A002"} and moved[-1]["position"] == 1
    # B001 moved up too (Counter 1's call took a ticket ahead of it in the shared order).
    others = received(phones["B001"], "ticket", where=lambda t: t["position"] == 2)
    settle()
    others += received(phones["B001"], "ticket", timeout=0)
    assert {t["label"] for t in others} == {"B001"}
    queue = received(display, "queue", timeout=0)
    assert queue and queue[-1]["recent"][0]["label"] == "A001"


def test_a_rolled_back_change_pushes_nothing(app, client, api, display):
    from sqlalchemy.orm import Session

    from queue_app.domain import queueing
    from queue_app.domain.errors import Conflict
    from queue_app.extensions import db

    ticket = api.issue("C")
    settle()
    forget(display)
    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        with pytest.raises(Conflict):
            queueing.finish(session, ticket["id"])  # waiting, not called: refused and rolled back
        with pytest.raises(RuntimeError):
            with queueing.write_transaction(session):
                queueing.events.record(session, session.get(queueing.Ticket, ticket["id"]), "called",
                                       queueing.utcnow())
                raise RuntimeError("crash after recording an event")
    settle()
    assert _drain(display) == []


def test_a_client_that_rejoins_gets_the_current_state(app, client, api):
    ticket = api.issue("B")
    api.call("POST", f"/counters/{api.counter_id('Counter 2')}/call-next", STAFF)
    phone = live_client(app, client)
    phone.emit("join", {"ticket": ticket["token"]}, namespace=NAMESPACE)
    phone.disconnect(namespace=NAMESPACE)
    api.call("POST", f"/tickets/{ticket['id']}/start", STAFF)
    again = live_client(app, client)
    again.emit("join", {"ticket": ticket["token"]}, namespace=NAMESPACE)
    assert received(again, "ticket", timeout=0)[0]["status"] == "serving"
    display = live_client(app, client)
    display.emit("join", {"branch": "demo"}, namespace=NAMESPACE)
    snapshot = received(display, "queue", timeout=0)[0]
    assert {c["name"]: c["ticket"] for c in snapshot["counters"]}["Counter 2"]["status"] == "serving"
