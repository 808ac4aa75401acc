"""Two app processes sharing a database and a Redis message queue: a change on one reaches clients of the other."""
import threading

import requests
import socketio
from servers import AppServer, free_port, server_env


def test_a_call_on_one_instance_reaches_a_display_on_another(db_path, seeded, redis_server, tmp_path):
    env = server_env(f"sqlite:///{db_path}", QUEUE_APP_MESSAGE_QUEUE=redis_server.url(0))
    kiosk_token = seeded["kiosk_token"]
    instances = [AppServer(env, tmp_path / f"server-{name}.log") for name in ("a", "b")]
    try:
        for instance in instances:
            instance.start()
        instance_a, instance_b = (instance.base for instance in instances)

        heard = []
        got_called = threading.Event()
        display = socketio.Client(reconnection=False)

        def on_called(data):
            heard.append(data)
            got_called.set()

        display.on("called", on_called, namespace="/live")
        display.connect(instance_b, namespaces=["/live"], transports=["websocket"], wait_timeout=10)
        assert display.call("join", {"branch": "demo"}, namespace="/live", timeout=10)["ok"]

        ticket = requests.post(instance_a + "/api/v1/branches/demo/tickets", json={"service": "A"},
                               headers={"Authorization": f"Bearer {kiosk_token}"}, timeout=10).json()
        token = requests.post(instance_a + "/api/v1/auth/token", timeout=10,
                              json={"email": "staff1@demo.test", "password": "demo-password"}).json()["token"]
        staff = {"Authorization": f"Bearer {token}"}
        counters = requests.get(instance_a + "/api/v1/branches/demo/counters", headers=staff, timeout=10).json()
        counter = next(c for c in counters if "A" in c["services"])
        called = requests.post(instance_a + f"/api/v1/counters/{counter['id']}/call-next", headers=staff, timeout=10)
        assert called.json()["label"] == ticket["label"]

        assert got_called.wait(10), "the display on instance B never heard the call made on instance A"
        assert heard[0]["label"] == ticket["label"] and heard[0]["counter"] == counter["name"]
        display.disconnect()
    finally:
        for instance in instances:
            instance.stop()


def test_healthz_reports_the_database_and_the_message_queue(db_path, redis_server):
    redis_url = redis_server.url(0)
    from helpers import make_app

    app = make_app(db_path)
    client = app.test_client()
    alone = client.get("/healthz")
    assert alone.status_code == 200 and alone.json["message_queue"] == "not configured"
    # Set after start-up, so no Socket.IO queue listener is started for this check.
    app.config["QUEUE_APP_MESSAGE_QUEUE"] = redis_url
    healthy = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json == {"status": "ok", "database": "ok", "message_queue": "ok"}
    app.config["QUEUE_APP_MESSAGE_QUEUE"] = f"redis://127.0.0.1:{free_port()}/0"
    down = client.get("/healthz")
    # Still serving its own clients: kept in rotation, reported as degraded.
    assert down.status_code == 200 and down.json["status"] == "degraded"
    assert down.json["message_queue"].startswith("error")


def test_behind_a_proxy_rate_limits_count_each_client_address(db_path):
    from helpers import make_app

    app = make_app(db_path, QUEUE_APP_PROXY_COUNT=1, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    body = {"email": "nobody@demo.test", "password": "wrong"}

    def attempt(address):
        return client.post("/api/v1/auth/token", json=body, headers={"X-Forwarded-For": address}).status_code

    assert [attempt("203.0.113.5") for _ in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.7") == 401  # another client behind the same proxy is not blocked
