"""Security hardening (issue 15): webhooks pinned to the address that was checked, production by
default, HSTS, no tokens in access logs, CSV cells that spreadsheets cannot run, kiosk bearer
tokens rate limited on the API."""
import csv
import io
import logging
import os
import subprocess
import sys
import time

import click
import pytest
import requests
from helpers import SECRET, TEST_CONFIG, Receiver, login_as, make_app
from servers import ROOT, AppServer, free_port

from queue_app import create_app
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.jobs import scheduler as jobs
from queue_app.planning import reports
from queue_app.tickets import queueing
from queue_app.webhooks import delivery as webhook_delivery
from queue_app.webhooks import operations as webhooks


@pytest.fixture
def hooks():
    receiver = Receiver(SECRET)
    yield receiver
    receiver.close()


def queue_one_event(session, url):
    endpoint = webhooks.create_endpoint(session, "demo", url, ["ticket.issued"], secret=SECRET).endpoint
    queueing.issue_ticket(session, "demo", "A")
    return endpoint


def app_in_mode(app, mode, **overrides):
    """Another app on the test's database, in `mode` (as QUEUE_APP_ENV would set it)."""
    return create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                       "QUEUE_APP_ENV": mode, **overrides})


def dispose(app):
    with app.app_context():
        db.engine.dispose()


# --- webhooks: one resolution, refused if any answer is not public, connected to that answer --------

@pytest.mark.parametrize("mode", ["development", "production"])
def test_a_webhook_to_a_private_address_is_refused_by_default_in_every_mode(app, session, hooks, mode,
                                                                            monkeypatch):
    monkeypatch.delenv("QUEUE_APP_WEBHOOK_ALLOW_PRIVATE", raising=False)
    port = hooks.server.server_address[1]
    endpoint = queue_one_event(session, f"http://localhost:{port}/hooks")
    moded = app_in_mode(app, mode)
    assert moded.config["QUEUE_APP_WEBHOOK_ALLOW_PRIVATE"] is False
    jobs.deliver_webhooks(moded)
    dispose(moded)
    session.expire_all()
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert delivery.status == "failed" and "non-public" in delivery.last_error
    assert hooks.requests == 0, "the receiver on loopback was reached"


@pytest.mark.parametrize("mode", ["development", "production"])
def test_allow_private_still_lets_webhooks_reach_loopback(app, session, hooks, mode, monkeypatch):
    monkeypatch.setenv("QUEUE_APP_WEBHOOK_ALLOW_PRIVATE", "1")
    port = hooks.server.server_address[1]
    endpoint = queue_one_event(session, f"http://localhost:{port}/hooks")
    moded = app_in_mode(app, mode)
    assert moded.config["QUEUE_APP_WEBHOOK_ALLOW_PRIVATE"] is True
    jobs.deliver_webhooks(moded)
    dispose(moded)
    session.expire_all()
    assert webhooks.deliveries(session, endpoint.id)[0].status == "delivered"
    assert len(hooks.accepted) == 1 and hooks.headers[0]["Host"] == f"localhost:{port}"


def test_the_delivery_connects_to_the_address_it_resolved_once_with_the_hostname_as_host(session, hooks):
    port = hooks.server.server_address[1]
    asked = []

    def resolver(host, port):  # the name does not exist in DNS: only the pinned address can be reached
        asked.append((host, port))
        return ["127.0.0.1"]

    queue_one_event(session, f"http://receiver.queue-test.invalid:{port}/hooks?x=1")
    report = webhook_delivery.deliver_due(session, allow_private=True, resolver=resolver)
    assert report.delivered == 1
    assert asked == [("receiver.queue-test.invalid", port)], "resolved once, for the check and the connection"
    assert hooks.headers[0]["Host"] == f"receiver.queue-test.invalid:{port}"


def test_a_real_localhost_name_reaches_the_loopback_receiver_when_private_is_allowed(session, hooks):
    port = hooks.server.server_address[1]
    queue_one_event(session, f"http://localhost:{port}/hooks")
    assert webhook_delivery.deliver_due(session, allow_private=True).delivered == 1
    assert hooks.headers[0]["Host"] == f"localhost:{port}" and len(hooks.accepted) == 1


@pytest.mark.parametrize("answers", [["8.8.8.8", "127.0.0.1"], ["127.0.0.1", "8.8.8.8"],
                                     ["8.8.8.8", "10.1.2.3"], ["2001:4860:4860::8888", "::1"],
                                     ["8.8.8.8", "169.254.169.254"], ["224.0.0.251"], ["::ffff:127.0.0.1"],
                                     ["0.0.0.0"], ["100.64.0.1"]])
def test_a_host_with_any_non_public_answer_is_refused(session, hooks, answers):
    port = hooks.server.server_address[1]
    endpoint = queue_one_event(session, f"http://mixed.queue-test.invalid:{port}/hooks")
    report = webhook_delivery.deliver_due(session, allow_private=False, resolver=lambda host, port: list(answers))
    assert report.failed == 1 and hooks.requests == 0
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert "non-public" in delivery.last_error and delivery.attempts == 1


def test_public_answers_pass_the_check():
    assert webhook_delivery.refusal("example.com", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]) is None
    assert "non-public" in webhook_delivery.refusal("example.com", ["93.184.216.34", "127.0.0.1"])


def test_a_name_that_does_not_resolve_is_retried_not_failed_for_good(session):
    endpoint = queue_one_event(session, "http://nothing.queue-test.invalid/hooks")

    def resolver(host, port):
        raise OSError("Name or service not known")

    assert webhook_delivery.deliver_due(session, allow_private=False, resolver=resolver).retried == 1
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert delivery.status == "pending" and "cannot resolve" in delivery.last_error


# --- production by default ---------------------------------------------------------------------------

def operator_env(**extra) -> dict:
    """The environment of an operator's shell: no QUEUE_APP_ENV, no test settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("QUEUE_APP_ENV", "QUEUE_APP_SECRET_KEY",
                                                            "QUEUE_APP_WEBHOOK_ALLOW_PRIVATE")}
    return {**env, "QUEUE_APP_RUN_SCHEDULER": "0", **extra}


def test_the_wsgi_entry_point_runs_in_production_unless_told_otherwise(tmp_path):
    database = f"sqlite:///{tmp_path / 'wsgi.sqlite'}"
    check = "import wsgi; c = wsgi.app.config; print(c['QUEUE_APP_ENV'], c['SESSION_COOKIE_SECURE'])"
    refused = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env=operator_env(QUEUE_APP_DATABASE_URL=database,
                                              QUEUE_APP_INSTANCE_PATH=str(tmp_path / "instance")))
    assert refused.returncode != 0 and "QUEUE_APP_SECRET_KEY" in refused.stderr
    started = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env=operator_env(QUEUE_APP_DATABASE_URL=database, QUEUE_APP_SECRET_KEY="k" * 32,
                                              QUEUE_APP_INSTANCE_PATH=str(tmp_path / "instance")))
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["production", "True"]
    development = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120, env=operator_env(QUEUE_APP_DATABASE_URL=database,
                                                               QUEUE_APP_ENV="development",
                                                               QUEUE_APP_INSTANCE_PATH=str(tmp_path / "instance")))
    assert development.stdout.split() == ["development", "False"], development.stderr


def test_queue_app_run_is_production_and_sends_hsts(db_path, tmp_path):
    env = operator_env(QUEUE_APP_DATABASE_URL=f"sqlite:///{db_path}", QUEUE_APP_RUN_SCHEDULER="0",
                       QUEUE_APP_INSTANCE_PATH=str(tmp_path / "instance"))
    refused = subprocess.run([sys.executable, "-m", "queue_app.cli", "run", "--port", str(free_port())], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "QUEUE_APP_SECRET_KEY" in refused.stderr
    server = AppServer({**env, "QUEUE_APP_SECRET_KEY": "run-secret-" + "x" * 20}, tmp_path / "server.log",
                       ready_path="/healthz")
    try:
        server.start(timeout=60)
        answer = requests.get(f"{server.base}/healthz", timeout=10)
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        server.stop()


def test_maintenance_commands_and_tools_need_no_secret_key_in_production(tmp_path):
    env = operator_env(QUEUE_APP_DATABASE_URL=f"sqlite:///{tmp_path / 'tools.sqlite'}",
                       QUEUE_APP_INSTANCE_PATH=str(tmp_path / "instance"))
    done = subprocess.run([sys.executable, "-m", "queue_app.cli", "staffing", "--rate", "30", "--aht-minutes", "5",
                           "--target", "0.8", "--within-seconds", "120"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "counters" in done.stdout


@pytest.mark.parametrize("args, mode", [(["demo", "--no-traffic"], "development"), (["run"], "production"),
                                        (["scheduler"], "production"), (["init-db"], "production")])
def test_queue_app_commands_load_the_app_in_their_mode(tmp_path, monkeypatch, args, mode):
    from flask.cli import ScriptInfo

    from queue_app.cli import QueueAppGroup

    for name in ("QUEUE_APP_ENV", "QUEUE_APP_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUE_APP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv("QUEUE_APP_INSTANCE_PATH", str(tmp_path / "instance"))
    group = QueueAppGroup()
    with group.make_context("queue-app", list(args)) as context:
        if args[0] in ("run", "scheduler"):  # they serve or run jobs: no production without a secret key
            with pytest.raises(click.ClickException, match="QUEUE_APP_SECRET_KEY"):
                context.ensure_object(ScriptInfo).load_app()
            monkeypatch.setenv("QUEUE_APP_SECRET_KEY", "cli-secret-" + "z" * 20)
        app = context.ensure_object(ScriptInfo).load_app()
    assert app.config["QUEUE_APP_ENV"] == mode
    assert bool(app.config.get("SESSION_COOKIE_SECURE")) == (mode == "production")
    with app.app_context():
        db.engine.dispose()


def test_tests_and_explicit_development_keep_development(app):
    assert app.config["QUEUE_APP_ENV"] == "development"
    assert not app.config.get("SESSION_COOKIE_SECURE")


# --- HSTS ---------------------------------------------------------------------------------------------

def test_production_responses_carry_hsts_and_development_ones_do_not(app, client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    production = app_in_mode(app, "production")
    try:
        for path in ("/healthz", "/login", "/api/v1/branches", "/display/demo"):
            header = production.test_client().get(path).headers.get("Strict-Transport-Security", "")
            assert header.startswith("max-age=") and int(header.split("=")[1].split(";")[0]) >= 15552000, path
    finally:
        dispose(production)


def test_a_secret_key_passed_in_the_config_is_not_ephemeral(app):
    production = app_in_mode(app, "production", SECRET_KEY="from-config-" + "y" * 20)
    dispose(production)
    assert production.config["SESSION_COOKIE_SECURE"]


# --- tokens never in access logs --------------------------------------------------------------------

class Captured(logging.Handler):
    def __init__(self):
        super().__init__()
        from queue_app.core import logs

        self.setFormatter(logs.TextFormatter())
        self.lines = []
        self.records = []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))


def test_the_access_log_has_no_ticket_booking_feedback_or_kiosk_tokens(app, client, api, seeded):
    from queue_app.core import logs

    ticket = api.issue("A")
    token, kiosk = ticket["token"], seeded["kiosk_token"]
    captured = Captured()
    logs.access_log.addHandler(captured)
    logs.access_log.setLevel(logging.INFO)
    try:
        client.get(f"/t/{token}")
        client.get(f"/t/{token}/feedback")
        client.get(f"/api/v1/tickets/{token}")
        client.get(f"/a/{token}")
        client.get(f"/a/{token}/calendar.ics")
        client.get(f"/f/{token}")
        client.post(f"/api/v1/feedback/{token}", json={})
        client.get(f"/api/v1/appointments/{token}")
        client.get(f"/kiosk/demo?device={kiosk}&lang=en")
    finally:
        logs.access_log.removeHandler(captured)
        logs.access_log.setLevel(logging.NOTSET)
    assert len(captured.lines) == 9
    for line, record in zip(captured.lines, captured.records):
        assert token not in line and kiosk not in line, line
        assert token not in str(vars(record)) and kiosk not in str(vars(record))
    assert any("/t/[redacted]" in line for line in captured.lines)
    assert any("/api/v1/tickets/[redacted]" in line for line in captured.lines)


def test_redaction_keeps_ids_and_other_query_parameters():
    from queue_app.core import logs

    assert logs.redact("GET /api/v1/tickets/42/recall HTTP/1.1") == "GET /api/v1/tickets/42/recall HTTP/1.1"
    assert logs.redact("GET /kiosk/demo?lang=en&device=abc_DEF-123 HTTP/1.1") == \
        "GET /kiosk/demo?lang=en&device=[redacted] HTTP/1.1"
    assert logs.redact("/kiosk/t/tickets") == "/kiosk/t/tickets"  # a branch called `t` is not a token page
    assert logs.redact("https://queue.example.com/a/xyz123/calendar.ics") == \
        "https://queue.example.com/a/[redacted]/calendar.ics"


def test_queue_app_run_prints_no_tokens_in_its_text_access_lines(db_path, seeded, tmp_path):
    kiosk = seeded["kiosk_token"]
    with make_app(db_path).app_context():
        issued = queueing.issue_ticket(db.session, "demo", "A")
        db.engine.dispose()
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{db_path}", "QUEUE_APP_RUN_SCHEDULER": "0",
           "QUEUE_APP_SECRET_KEY": "logs-secret", "QUEUE_APP_LOG_FORMAT": "text"}
    server = AppServer(env, tmp_path / "stderr.log", ready_path="/healthz", log_stdout=False)
    base = server.base
    try:
        server.start()
        assert requests.get(f"{base}/t/{issued.token}", timeout=10).status_code == 200
        assert requests.get(f"{base}/api/v1/tickets/{issued.token}", timeout=10).status_code == 200
        requests.get(f"{base}/kiosk/demo?device={kiosk}", timeout=10, allow_redirects=False)
        time.sleep(0.5)
    finally:
        server.stop()
    text = (tmp_path / "stderr.log").read_text()
    assert "/t/[redacted]" in text and "device=[redacted]" in text, text[-2000:]
    assert issued.token not in text and kiosk not in text


# --- CSV exports -------------------------------------------------------------------------------------

def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(client, session):
    catalogue.create_service(session, "demo", "Z", '=HYPERLINK("http://evil.example","click")')
    queueing.issue_ticket(session, "demo", "Z")
    login_as(client, "manager@demo.test")
    text = client.get("/manage/branches/demo/stats.csv").data.decode("utf-8").lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    service = next(r for r in rows if r["by"] == "service" and r["key"] == "Z")
    assert service["name"] == "'" + '=HYPERLINK("http://evil.example","click")'
    assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row.values() if cell)


@pytest.mark.parametrize("cell, expected", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1+2", "'-1+2"),
                                            ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
                                            ("Counter 1", "Counter 1"), (-3, -3), (2.5, 2.5), ("", "")])
def test_spreadsheet_escaping(cell, expected):
    assert reports.spreadsheet_safe(cell) == expected


# --- kiosk bearer tokens are rate limited on the API -------------------------------------------------

def test_kiosk_bearer_tokens_are_rate_limited_per_device_on_the_api(limited_app):
    app, token = limited_app(KIOSK_TICKET_RATE_LIMIT="3 per minute")
    client = app.test_client()
    kiosk = {"Authorization": f"Bearer {token}"}
    answers = [client.post("/api/v1/branches/demo/tickets", json={"service": "A"}, headers=kiosk).status_code
               for _ in range(4)]
    assert answers == [201, 201, 201, 429]
    with app.app_context():
        _device, second = catalogue.create_kiosk_device(db.session, "demo", "Second kiosk")
    assert client.post("/api/v1/branches/demo/tickets", json={"service": "A"},
                       headers={"Authorization": f"Bearer {second}"}).status_code == 201
    staff = client.post("/api/v1/auth/token", json={"email": "staff1@demo.test", "password": "demo-password"})
    bearer = {"Authorization": f"Bearer {staff.json['token']}"}
    assert [client.post("/api/v1/branches/demo/tickets", json={"service": "A"}, headers=bearer).status_code
            for _ in range(4)] == [201] * 4, "staff are not kiosks"


def test_kiosk_check_ins_on_the_api_are_limited_per_device_not_per_token_string(limited_app):
    app, token = limited_app(LOOKUP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [client.post("/api/v1/branches/demo/check-in", json={"code": f"GUESS{i:03d}"},
                         headers={"Authorization": f"Bearer {token}"}).status_code for i in range(4)]
    assert codes == [404, 404, 404, 429]
    with app.app_context():
        from queue_app.core.extensions import limiter

        keys = " ".join(str(key) for key in getattr(limiter.storage, "storage", {}))
    assert token not in keys, "the device token itself is a limiter key (it would sit in Redis)"
