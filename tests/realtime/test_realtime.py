"""Socket.IO /live through Flask-SocketIO's test client, with changes made through REST."""
import threading

import pytest
import socketio
from helpers import _drain, make_app, received, settle
from werkzeug.serving import make_server

from queue_app.realtime.live import NAMESPACE, socketio_of

STAFF = "staff1@demo.test"


def live_client(app, client):
    return socketio_of(app).test_client(app, namespace=NAMESPACE, flask_test_client=client)


def forget(live) -> None:
    _drain(live)
    live.kept = []


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
                          "counter_names": {"zh_Hant": "1 號櫃檯", "zh_Hans": "1 号柜台"}, "at": called[-1]["at"]}
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

    from queue_app.core.errors import Conflict
    from queue_app.core.extensions import db
    from queue_app.tickets import queueing

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
                queueing.event_log.record(session, session.get(queueing.Ticket, ticket["id"]), "called",
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


def _join_ticket(app, client, ticket):
    phone = live_client(app, client)
    assert phone.emit("join", {"ticket": ticket["token"]}, namespace=NAMESPACE, callback=True)["ok"]
    return phone


def test_an_estimate_change_reaches_the_tickets_room_and_no_other(app, client, api, display):
    # Only Counter 1 (A and C) stays open: A tickets queue behind one another.
    for name in ("Counter 2", "Counter 3"):
        assert api.call("PATCH", f"/counters/{api.counter_id(name)}", "manager@demo.test",
                        json={"state": "closed"}).status_code == 200
    tickets = [api.issue("A") for _ in range(4)]
    phones = {t["label"]: _join_ticket(app, client, t) for t in tickets[2:]}
    before = {label: received(phone, "ticket", timeout=0)[-1] for label, phone in phones.items()}
    assert before["A004"]["estimate"]["state"] == "waiting" and before["A004"]["estimate"]["minutes"] > 0
    settle()
    for phone in phones.values():
        forget(phone)

    counter = api.counter_id("Counter 1")
    assert api.call("POST", f"/counters/{counter}/call-next", STAFF).json["label"] == "A001"
    for label, phone in phones.items():
        moved = received(phone, "ticket", where=lambda t: t["ahead"] < before[label]["ahead"])
        assert {t["label"] for t in moved} == {label}  # its own status only, never another ticket's
        assert moved[-1]["estimate"]["state"] == "waiting"
    # The display gets the wait for a ticket taken now, per service, with no personal data.
    queue = received(display, "queue", where=lambda q: True)[-1]
    estimates_by_service = {w["service"]: w["estimate"] for w in queue["waiting"]}
    assert estimates_by_service["A"]["state"] == "waiting" and estimates_by_service["A"]["minutes"] > 0
    assert estimates_by_service["B"]["state"] == "no_counter"  # no counter serving B is open


def test_almost_your_turn_reaches_the_phone_once(app, client, api):
    from sqlalchemy.orm import Session

    from queue_app.core.extensions import db
    from queue_app.tickets import turn_alerts

    tickets = [api.issue("B") for _ in range(3)]
    phone = _join_ticket(app, client, tickets[1])
    assert received(phone, "ticket", timeout=0)[-1]["almost_turn"] is False
    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        assert turn_alerts.send_almost_turn(session) >= 2
        assert turn_alerts.send_almost_turn(session) == 0
    alerted = received(phone, "ticket", where=lambda t: t["almost_turn"])
    assert alerted[-1]["almost_turn"] is True and alerted[-1]["label"] == "B002"
    settle()
    assert sum(1 for t in received(phone, "ticket", timeout=0) if t["almost_turn"]) == 1


def test_the_tracking_page_shows_the_estimate_and_the_display_text(app, client, api):
    for name in ("Counter 2", "Counter 3"):
        api.call("PATCH", f"/counters/{api.counter_id(name)}", "manager@demo.test", json={"state": "closed"})
    tickets = [api.issue("A") for _ in range(3)]
    status = tickets[-1]["estimate"]
    html = client.get(tickets[-1]["track_url"].replace("http://kiosk.test", "")).data.decode()
    assert f"About {status['minutes']} min ({status['low']}-{status['high']})" in html
    assert "The first counter for this opens" in html  # the texts the page formats pushes with


def test_a_counter_paused_elsewhere_reaches_displays_and_consoles_at_once(app, client, api, display):
    forget(display)
    counter = api.counter_id("Counter 2")
    paused = api.call("PATCH", f"/counters/{counter}", "manager@demo.test", json={"state": "paused"})
    assert paused.status_code == 200
    snapshots = received(display, "queue", where=lambda s: any(c["id"] == counter and c["state"] == "paused"
                                                               for c in s["counters"]))
    assert snapshots, "no snapshot followed the counter's change"
    assert next(c for c in snapshots[-1]["counters"] if c["id"] == counter)["state"] == "paused"


def test_two_apps_in_one_process_each_push_to_their_own_clients(app, api, tmp_path):
    """A Socket.IO server per app: a second app built in the same process (as a test or a second
    instance does) leaves the first one pushing to the displays connected to it. With one server
    shared at module level, the first app's displays, connected through its own middleware, heard
    nothing once the second app existed."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    display = socketio.Client(reconnection=False)
    heard = threading.Event()
    calls = []
    display.on("called", lambda data: (calls.append(data["label"]), heard.set()), namespace=NAMESPACE)
    try:
        other = make_app(tmp_path / "other.sqlite")
        assert socketio_of(other) is not socketio_of(app)
        display.connect(f"http://127.0.0.1:{http.server_port}", namespaces=[NAMESPACE], transports=["polling"],
                        wait_timeout=10)
        assert display.call("join", {"branch": "demo"}, namespace=NAMESPACE, timeout=10)["ok"]
        ticket = api.issue("A")
        api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", STAFF)
        assert heard.wait(10), "the first app's display heard nothing"
        assert calls == [ticket["label"]]
    finally:
        display.disconnect()
        http.shutdown()
