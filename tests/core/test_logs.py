"""Structured logs: one JSON object per line with the request id, method, path, status and duration."""
import io
import json
import logging
import os

import requests
from helpers import make_app
from servers import AppServer

from queue_app.core import logs


def test_a_server_with_json_logs_writes_one_object_per_line_with_request_ids(db_path, tmp_path):
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{db_path}", "QUEUE_APP_LOG_FORMAT": "json",
           "QUEUE_APP_RUN_SCHEDULER": "0", "QUEUE_APP_SECRET_KEY": "logs-test"}
    stderr_path = tmp_path / "stderr.log"
    server = AppServer(env, stderr_path, ready_path="/healthz", log_stdout=False).start()
    try:
        base = server.base
        given = requests.get(base + "/api/v1/branches", headers={"X-Request-ID": "edge-7f3a.42"}, timeout=10)
        fresh = requests.get(base + "/api/v1/branches/nowhere", timeout=10)
        odd = requests.get(base + "/healthz", headers={"X-Request-ID": "no spaces allowed " * 10}, timeout=10)
    finally:
        server.stop()
    assert given.headers["X-Request-ID"] == "edge-7f3a.42"
    assert fresh.status_code == 404 and len(fresh.headers["X-Request-ID"]) == 32
    assert odd.headers["X-Request-ID"] != "no spaces allowed " * 10 and len(odd.headers["X-Request-ID"]) == 32

    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert lines, "the server wrote no log lines"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    access = {r["request_id"]: r for r in records if r["logger"] == "queue_app.access"}
    first = access["edge-7f3a.42"]
    assert first["method"] == "GET" and first["path"] == "/api/v1/branches" and first["status"] == 200
    assert isinstance(first["duration_ms"], float) and first["level"] == "INFO"
    assert isinstance(first["waited_ms"], float) and first["waited_ms"] >= 0  # its wait for a turn
    assert first["time"].endswith("Z")
    missing = access[fresh.headers["X-Request-ID"]]
    assert missing["status"] == 404 and missing["path"] == "/api/v1/branches/nowhere"
    assert access[odd.headers["X-Request-ID"]]["path"] == "/healthz"


def test_lines_logged_during_a_request_carry_its_id_and_exceptions_stay_on_one_line(db_path):
    app = make_app(db_path)
    log = logging.getLogger("queue_app.test_logs")

    @app.get("/test-log")
    def write_some():
        log.warning("counter %s is slow", 3)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("handled")
        return "ok"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestContextFilter())
    log.addHandler(handler)
    try:
        response = app.test_client().get("/test-log", headers={"X-Request-ID": "req-1"})
    finally:
        log.removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-1"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    warning, error = (json.loads(line) for line in lines)
    assert warning == {**warning, "level": "WARNING", "logger": "queue_app.test_logs", "message": "counter 3 is slow",
                       "request_id": "req-1", "method": "GET", "path": "/test-log"}
    assert error["level"] == "ERROR" and "ValueError: boom" in error["exception"] and error["request_id"] == "req-1"
