"""Pushes cost nothing while nobody listens, and a burst of changes costs one snapshot per window,
while calls are announced at once (through Flask-SocketIO's test client, changes made through REST)."""
import math
import time

from helpers import _drain, received

from queue_app.core.extensions import db
from queue_app.realtime.live import NAMESPACE, publisher, socketio_of


def join_display(app, client):
    live = socketio_of(app).test_client(app, namespace=NAMESPACE, flask_test_client=client)
    assert live.emit("join", {"branch": "demo"}, namespace=NAMESPACE, callback=True)["ok"]
    return live


def snapshot_window(app, seconds: float) -> None:
    """This app's debounce window (QUEUE_APP_PUSH_DEBOUNCE_MS is read once, by create_app)."""
    with app.app_context():
        publisher.configure(db.engine, socketio_of(app), seconds)


def waiting(snapshot) -> dict:
    return {w["service"]: w["count"] for w in snapshot["waiting"]}


def test_no_client_connected_wakes_no_publisher(app, client, api):
    assert app.config["QUEUE_APP_PUSH_DEBOUNCE_MS"] == 250
    before = publisher.woken
    api.issue("A")
    api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", "staff1@demo.test")
    assert publisher.woken == before  # the commit hook returned without handing anything over

    display = join_display(app, client)
    api.issue("A")
    assert publisher.woken == before + 1
    assert publisher.wait_idle()
    display.disconnect(namespace=NAMESPACE)


def test_a_burst_of_issues_makes_a_few_snapshots_and_the_last_is_current(app, client, api):
    window = 1.0
    snapshot_window(app, window)
    display = join_display(app, client)
    assert waiting(received(display, "queue", timeout=0)[-1])["A"] == 0
    display.kept = []

    burst = 12
    started = time.monotonic()
    for _ in range(burst):
        api.issue("A")
    elapsed = time.monotonic() - started
    assert publisher.wait_idle()
    snapshots = [p["args"][0] for p in _drain(display) if p["name"] == "queue"]
    # One snapshot per window at most: the windows the burst spanned, not one per issue.
    assert 1 <= len(snapshots) <= 1 + math.ceil(elapsed / window)
    assert len(snapshots) < burst
    assert waiting(snapshots[-1])["A"] == burst  # built after the last change of its window
    display.disconnect(namespace=NAMESPACE)


def test_a_call_is_announced_before_the_snapshot_window_ends(app, client, api):
    ticket = api.issue("A")
    snapshot_window(app, 2.0)
    display = join_display(app, client)
    assert len(received(display, "queue", timeout=0)) == 1  # the join's own snapshot
    display.kept = []

    api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", "staff1@demo.test")
    called = received(display, "called")
    assert [c["label"] for c in called] == [ticket["label"]]
    # The banner is out while the branch's snapshot still waits for the end of its window.
    assert received(display, "queue", timeout=0) == []
    assert publisher.wait_idle()
    after = received(display, "queue", timeout=0)
    assert len(after) == 1 and after[0]["recent"][0]["label"] == ticket["label"]
    display.disconnect(namespace=NAMESPACE)
