"""The deployment page (docs/pages/operating/deployment.md), run as written: PostgreSQL, a Redis
message queue, two gunicorn instances (`QUEUE_APP_RUN_SCHEDULER=0`) and `queue-app scheduler`, each a real process.

Clients are separate processes too (multiprocessing), so the races below cross process and
instance boundaries: nothing in one Python process can serialise them. Branches here are open
around the clock in a zone where it is about noon now, so the real clock can drive bookings,
check-ins and the scheduler's jobs on any day the suite runs.
"""
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as email_policy

import processes
import pytest
import requests
import socketio
from helpers import TEST_CONFIG
from processes import Phone, assert_each_ticket_issued_and_called_once, run_processes
from servers import ROOT, RedisServer, cli, free_port, start_gunicorn, start_nginx, stop, wait_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app import create_app
from queue_app.accounts.models import Staff
from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db
from queue_app.customers.models import Customer
from queue_app.notifications.models import Notification
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket, TicketEvent

PASSWORD = "production-password"
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
GENEROUS = "100000 per minute"  # the races send hundreds of requests from one loopback address

pytestmark = [pytest.mark.own_postgres, pytest.mark.slow]


def noon_zone(now: datetime) -> str:
    """An IANA zone where it is between 10:00 and 14:00 now (Etc/GMT-8 is UTC+8)."""
    offset = max(-12, min(14, 12 - now.hour))
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def on_grid(at: datetime, minutes: int = 15) -> datetime:
    """`at` rounded up to the booking grid."""
    at = at.replace(second=0, microsecond=0)
    return at + timedelta(minutes=(-at.minute) % minutes)


class Stack:
    """PostgreSQL database, Redis, two app instances; the domain reachable in-process for set-up."""

    def __init__(self, pg_server, folder):
        self.folder = folder
        self.redis = RedisServer(folder)
        self.database_url = pg_server.create_database("prod_" + uuid.uuid4().hex[:12])
        self.env = {
            # The deployment page's commands as an operator's shell runs them: no QUEUE_APP_ENV (the tests'
            # development setting), so gunicorn and the scheduler run in the default production mode.
            **{k: v for k, v in os.environ.items() if k != "QUEUE_APP_ENV"},
            "QUEUE_APP_DATABASE_URL": self.database_url,
            "QUEUE_APP_MESSAGE_QUEUE": self.redis.url(0),
            "QUEUE_APP_SECRET_KEY": "production-test-secret",
            "QUEUE_APP_RATELIMIT_STORAGE_URI": self.redis.url(1),
            "QUEUE_APP_PROXY_COUNT": "1",
            "QUEUE_APP_INSTANCE_PATH": str(folder / "instance-web"),
            "QUEUE_APP_MAIL_DRIVER": "console",
        }
        for limit in ("KIOSK_TICKET", "PUBLIC_TICKET", "BOOKING", "LOOKUP", "TRACK"):
            self.env[f"QUEUE_APP_{limit}_RATE_LIMIT"] = GENEROUS
        self.instances = []
        self.bases = []
        self.app = None

    def start(self):
        cli(self.env, "init-db")  # the deployment page's step: migrations on an empty PostgreSQL database
        self.app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": self.database_url})
        with self.app.app_context():
            self.engine = db.engine
            catalogue.create_staff(db.session, "boss@prod.test", PASSWORD, "admin", [], name="Boss")
        for name in ("a", "b"):
            port = free_port()
            self.env["QUEUE_APP_BASE_URL"] = f"http://127.0.0.1:{port}"
            self.instances.append(start_gunicorn(self.env, port, self.folder / f"instance-{name}.log"))
            self.bases.append(f"http://127.0.0.1:{port}")
        for base, process in zip(self.bases, self.instances):
            wait_for(base + "/healthz", process, timeout=60)
        self.staff_token = requests.post(self.bases[0] + "/api/v1/auth/token", timeout=10,
                                         json={"email": "boss@prod.test", "password": PASSWORD}).json()["token"]

    def branch(self, slug: str, counters: int, service_minutes: int = 5) -> dict:
        """A branch open all day, service A served by `counters` open counters, a kiosk."""
        zone = noon_zone(datetime.now(timezone.utc))
        with Session(self.engine) as session:
            catalogue.create_branch(session, slug, slug.title(), zone, opening_hours=ALL_DAY, country="TW")
            catalogue.create_service(session, slug, "A", "Accounts", expected_minutes=service_minutes)
            ids = [catalogue.create_counter(session, slug, f"Counter {n}", ["A"], state="open").id
                   for n in range(1, counters + 1)]
            _device, kiosk = catalogue.create_kiosk_device(session, slug, "Lobby kiosk")
        return {"slug": slug, "counters": ids, "kiosk": kiosk}

    def session(self) -> Session:
        return Session(self.engine)

    def stop(self):
        for process in self.instances:
            stop(process)
        if self.app is not None:
            with self.app.app_context():
                db.engine.dispose()
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(pg_server, tmp_path_factory):
    running = Stack(pg_server, tmp_path_factory.mktemp("production"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_kiosks_and_counters_in_separate_processes_on_two_instances_never_share_a_ticket(stack):
    branch = stack.branch("race", counters=6, service_minutes=1)
    kiosks = [(processes.kiosk_worker, stack.bases, branch["kiosk"], "race", "A", 60) for _ in range(3)]
    counters = [(processes.counter_worker, stack.bases, stack.staff_token, counter) for counter in branch["counters"]]
    reports = run_processes(kiosks + counters)

    assert_each_ticket_issued_and_called_once(reports, 180)
    with stack.session() as session:
        statuses = session.execute(select(Ticket.status, func.count()).where(Ticket.branch.has(slug="race"))
                                   .group_by(Ticket.status)).all()
    assert dict(statuses) == {"done": 180}


def test_phones_in_separate_processes_on_two_instances_book_the_last_seat_once(stack):
    stack.branch("seat", counters=1)  # one counter: one visit per slot
    start = on_grid(datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    phones = [(processes.booking_worker, stack.bases[n % 2], "seat", "A", start, n) for n in range(8)]
    answers = run_processes(phones)
    assert sorted(status for status, _ in answers) == [201] + [409] * 7
    assert {code for status, code in answers if status == 409} == {"slot_full"}
    with stack.session() as session:
        assert session.scalar(select(func.count(Appointment.id)).where(Appointment.branch.has(slug="seat"))) == 1


def test_one_booking_checked_in_by_kiosks_in_separate_processes_on_two_instances_gives_one_ticket(stack):
    branch = stack.branch("scan", counters=1)
    now = datetime.now(timezone.utc)
    start = on_grid(now)  # within the check-in window (opens 30 minutes before)
    with stack.session() as session:
        made = booking.book(session, "scan", "A", start, name="Ann", email="ann@example.test",
                            now=start - timedelta(days=1))
        code = made.appointment.check_in_code
    scans = [(processes.check_in_worker, stack.bases[n % 2], branch["kiosk"], "scan", code) for n in range(6)]
    answers = run_processes(scans)
    assert sorted(status for status, _ in answers) == [200] * 5 + [201]
    assert len({ticket for _, ticket in answers}) == 1
    with stack.session() as session:
        assert session.scalar(select(func.count(Ticket.id)).where(Ticket.branch.has(slug="scan"))) == 1


def test_a_call_made_through_one_instance_reaches_a_phone_on_the_other(stack):
    branch = stack.branch("call", counters=1)
    kiosk = {"Authorization": f"Bearer {branch['kiosk']}"}
    ticket = requests.post(stack.bases[0] + "/api/v1/branches/call/tickets", json={"service": "A"}, headers=kiosk,
                           timeout=10).json()
    phone = Phone(stack.bases[1], ticket["token"])
    try:
        called = requests.post(stack.bases[0] + f"/api/v1/counters/{branch['counters'][0]}/call-next",
                               headers={"Authorization": f"Bearer {stack.staff_token}"}, timeout=10)
        assert called.json()["id"] == ticket["id"]
        assert phone.wait_until(lambda push: push.get("status") == "called", timeout=10), phone.pushes
    finally:
        phone.close()


class MailCatcher:
    """aiosmtpd on loopback: every message the schedulers send."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.raw: list[bytes] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.content)
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def stop(self):
        self.controller.stop()


def test_two_schedulers_started_at_once_do_each_job_once_and_their_pushes_reach_both_instances(stack, tmp_path):
    branch = stack.branch("jobs", counters=4)  # four visits per slot
    now = datetime.now(timezone.utc)
    soon = on_grid(now + timedelta(minutes=75))  # its 2-hour reminder is due now
    gone = on_grid(now) - timedelta(minutes=45)  # started 30-45 minutes ago, never checked in: a no-show
    with stack.session() as session:
        staff_id = session.scalar(select(Staff.id).where(Staff.role == "admin"))
        for n in range(4):
            booking.book(session, "jobs", "A", soon, name=f"Soon {n}", email=f"soon{n}@example.test",
                         now=soon - timedelta(days=1))
            # Booked by staff, so a miss is a strike on the record (unproven ones are not: identity.py).
            booking.book(session, "jobs", "A", gone, name=f"Gone {n}", email=f"gone{n}@example.test",
                         now=gone - timedelta(days=1), staff_id=staff_id)
    stack.branch("old", counters=1)
    with stack.session() as session:  # yesterday's tickets, never called: the day close cancels them
        for _ in range(3):
            queueing.issue_ticket(session, "old", "A", now=now - timedelta(days=1))
    kiosk = {"Authorization": f"Bearer {branch['kiosk']}"}
    tickets = [requests.post(stack.bases[0] + "/api/v1/branches/jobs/tickets", json={"service": "A"},
                             headers=kiosk, timeout=10).json() for _ in range(2)]
    phones = [Phone(stack.bases[0], tickets[0]["token"]), Phone(stack.bases[1], tickets[1]["token"])]
    mail = MailCatcher()
    env = {**stack.env, "QUEUE_APP_SMTP_URL": mail.url, "QUEUE_APP_MAIL_DRIVER": "smtp",
           "QUEUE_APP_MAIL_FROM": "queue@prod.test"}
    schedulers = []
    try:
        # Two hosts by mistake: separate instance folders, so the file lock cannot stop either.
        for name in ("one", "two"):
            log = open(tmp_path / f"scheduler-{name}.log", "w")
            schedulers.append((subprocess.Popen(
                [sys.executable, "-m", "queue_app.cli", "scheduler"],
                env={**env, "QUEUE_APP_INSTANCE_PATH": str(tmp_path / name)}, cwd=ROOT,
                stdout=log, stderr=log), log))

        for phone in phones:  # the almost-turn job ran in a scheduler; its push came through Redis
            assert phone.wait_until(lambda push: push.get("almost_turn") is True, timeout=60), phone.pushes

        def unsettled() -> list:
            """Messages due by now still unsent, and bookings not yet swept."""
            with stack.session() as session:
                due = session.execute(select(Notification.template, Notification.recipient, Notification.status)
                                      .where(Notification.status.in_(["pending", "sending"]),
                                             Notification.next_attempt_at <= now)).all()
                swept = session.scalar(select(func.count(Appointment.id)).where(Appointment.status == "no_show",
                                                                           Appointment.branch.has(slug="jobs")))
                expired = session.scalar(select(func.count(Ticket.id)).where(Ticket.status == "cancelled",
                                                                             Ticket.branch.has(slug="old")))
            return due + ([] if swept == 4 else [("no-shows swept", swept)]) + (
                [] if expired == 3 else [("tickets expired", expired)])

        deadline = time.time() + 90
        while unsettled() and time.time() < deadline:
            time.sleep(1)
        assert unsettled() == [], "the schedulers did not send the mail and sweep the no-shows in time"
        time.sleep(3)  # a second sender that would send again has had its chance
        for process, _log in schedulers:
            assert process.poll() is None, "a scheduler stopped: " + (tmp_path / "scheduler-one.log").read_text()
    finally:
        for process, log in schedulers:
            stop(process)
            log.close()
        for phone in phones:
            phone.close()
        mail.stop()

    messages = [message_from_bytes(raw, policy=email_policy) for raw in mail.raw]
    sent = [(m["To"], m["Subject"]) for m in messages]
    assert len(sent) == len(set(sent)), f"a message went out twice: {sorted(sent)}"
    with stack.session() as session:
        rows = session.execute(select(Notification.status, Notification.attempts)
                               .where(Notification.status == "sent")).all()
        assert len(rows) == len(messages) and {attempts for _, attempts in rows} == {1}
        reminders = [m for m in messages if m["Subject"].startswith("Reminder")]
        assert sorted(m["To"] for m in reminders) == [f"soon{n}@example.test" for n in range(4)]
        strikes = session.scalars(select(Customer.strikes).where(Customer.email.like("gone%"))).all()
        assert strikes == [1] * 4, "a no-show was counted twice"
        kinds = dict(session.execute(select(TicketEvent.type, func.count()).join(Ticket).where(
            Ticket.branch.has(Branch.slug.in_(["jobs", "old"])), TicketEvent.type.in_(["almost_turn", "expired"]))
            .group_by(TicketEvent.type)).all())
        assert kinds == {"almost_turn": 2, "expired": 3}, "a scheduler job acted twice on one ticket"


def readme_nginx_configuration() -> str:
    """The nginx sample of the deployment page (docs/pages/operating/deployment.md), exactly as printed there."""
    text = (ROOT / "docs" / "pages" / "operating" / "deployment.md").read_text(encoding="utf-8")
    after = text.split("nginx, sticky by client address", 1)[1]
    return after.split("```", 2)[1].strip()


def test_nginx_with_the_readme_configuration_serves_polling_and_websocket_clients(stack, tmp_path):
    port = free_port()
    sample = readme_nginx_configuration()
    assert "ip_hash;" in sample and "listen 443 ssl;" in sample
    # Only the address changes: plain HTTP on a free port, and this test's two instances.
    assert "/var/log/nginx/queue_app.access.log queue_app;" in sample
    site = (sample.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
            .replace("127.0.0.1:8001", stack.bases[0].removeprefix("http://"))
            .replace("127.0.0.1:8002", stack.bases[1].removeprefix("http://"))
            .replace("/var/log/nginx/queue_app.access.log", str(tmp_path / "access.log")))
    proxy = start_nginx(tmp_path, site)  # errors: tmp_path/error.log
    base = f"http://127.0.0.1:{port}"
    displays = []
    try:
        wait_for(base + "/healthz", proxy)
        health = requests.get(base + "/healthz", timeout=10)
        assert health.json()["message_queue"] == "ok"
        assert len(health.headers["X-Request-ID"]) == 32  # nginx's $request_id reached the app and came back
        # The instances run in production mode by default (they send HSTS themselves); through nginx
        # HSTS comes once (nginx's; the app's copy is hidden), on errors too.
        assert requests.get(stack.bases[0] + "/healthz", timeout=10).headers["Strict-Transport-Security"]
        for answer in (health, requests.get(base + "/no-such-page", timeout=10)):
            assert answer.raw.headers.getlist("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]

        branch = stack.branch("proxied", counters=1)
        for transport in ("polling", "websocket"):  # long-polling needs every request on one instance
            heard = []
            display = socketio.Client(reconnection=False)
            display.on("called", heard.append, namespace="/live")
            display.connect(base, namespaces=["/live"], transports=[transport], wait_timeout=10)
            assert display.call("join", {"branch": "proxied"}, namespace="/live", timeout=10)["ok"]
            displays.append((display, heard))
        ticket = requests.post(base + "/api/v1/branches/proxied/tickets", json={"service": "A"}, timeout=10,
                               headers={"Authorization": f"Bearer {branch['kiosk']}"}).json()
        # Tokens in links never reach nginx's access log (nor the ticket's page its referrers).
        assert requests.get(base + f"/t/{ticket['token']}", timeout=10).status_code == 200
        assert requests.get(base + f"/api/v1/tickets/{ticket['token']}", timeout=10).status_code == 200
        requests.get(base + f"/kiosk/proxied?device={branch['kiosk']}", timeout=10, allow_redirects=False)
        for instance in stack.bases:  # one of them is not the instance the displays are on
            requests.post(instance + f"/api/v1/counters/{branch['counters'][0]}/call-next", timeout=10,
                          headers={"Authorization": f"Bearer {stack.staff_token}"})
            requests.post(instance + f"/api/v1/tickets/{ticket['id']}/recall", timeout=10,
                          headers={"Authorization": f"Bearer {stack.staff_token}"})
        deadline = time.time() + 10
        while time.time() < deadline and any(len(heard) < 2 for _, heard in displays):
            time.sleep(0.1)
        for display, heard in displays:
            assert [call["label"] for call in heard[:2]] == [ticket["label"]] * 2, heard
            assert display.connected  # polling kept its session: every request reached the same instance
        logged = (tmp_path / "access.log").read_text()
        assert "GET /t/[redacted] HTTP/1.1" in logged and "GET /api/v1/tickets/[redacted] HTTP/1.1" in logged
        assert "GET /kiosk/proxied HTTP/1.1" in logged and "/healthz" in logged
        assert ticket["token"] not in logged and branch["kiosk"] not in logged
    finally:
        for display, _ in displays:
            display.disconnect()
        stop(proxy)
