"""What several test modules share: sign-in and form helpers, booking and branch helpers, race
and lobby drivers, receivers, constants. Test modules import from here, never from each other."""
import hashlib
import hmac
import json
import random
import re
import shutil
import threading
import time
from collections import Counter as Tally
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from browser import SCREENS
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app import create_app
from queue_app.booking.models import Appointment
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch, Service
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.core.security import token_hash
from queue_app.planning import plan as planning
from queue_app.realtime.live import NAMESPACE
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "RATELIMIT_ENABLED": False,
    "QUEUE_APP_BASE_URL": "http://kiosk.test",
    # A cheap Argon2id (about 1 ms instead of 0.2 s a hash): the demo staff sign in in most tests.
    # tests/accounts/test_accounts.py signs in at the real cost (the app's default).
    "PASSWORD_HASH_COST": "m=1024,t=1,p=1",
}


def make_app(db_path, **overrides):
    return create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}", **overrides})


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# Shared by several test modules.
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TAIPEI = ZoneInfo("Asia/Taipei")
NY = ZoneInfo("America/New_York")
NAME = "Chen Mei-Ling"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
NOW = utc(2026, 6, 1, 4, 0)  # 12:00 in Taipei
GS, ESC = b"\x1d", b"\x1b"
URL = "http://kiosk.test/t/AbCdEf123"
PASSWORD = "demo-password"
STAFF_EMAIL = "staff1@demo.test"
MONDAY = utc(2026, 3, 2, 0, 0)  # 08:00 in Taipei, before opening
TOTAL_TICKETS = 2000
KIOSKS = 2
SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
SECRET = "whsec_test-secret-0123456789abcdef"


def race(engine, attempts):
    """Run callables at the same instant on their own sessions; collect results or error codes."""
    barrier = threading.Barrier(len(attempts))
    outcomes = [None] * len(attempts)

    def run(i, attempt):
        with Session(engine) as own:
            barrier.wait()
            try:
                outcomes[i] = attempt(own)
            except DomainError as error:
                outcomes[i] = error.code
            except Exception as error:  # kept, so the assertion shows it instead of a dead thread
                outcomes[i] = repr(error)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def make_branch(session, slug, zone, hours, *, counters=1, minutes=15, rules=None):
    catalogue.create_branch(session, slug, slug.title(), zone, opening_hours={d: hours for d in WEEK})
    if rules:
        catalogue.update_branch(session, slug, booking_rules=rules)
    catalogue.create_service(session, slug, "A", "Accounts", expected_minutes=minutes)
    for i in range(counters):
        catalogue.create_counter(session, slug, f"Desk {i + 1}", ["A"], state="open")


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


def error_code(response):
    return response.json["error"]["code"]


def first_free_slot(api, service="B", days=7):
    response = api.call("GET", f"/branches/demo/availability?service={service}&days={days}")
    assert response.status_code == 200, response.json
    return next(s for d in response.json["days"] for s in d["slots"] if s["remaining"] > 0)


def book(api, start, **extra):
    body = {"service": "B", "start": start, "name": "Chen Mei-Ling", "phone": "+886912345678", **extra}
    return api.call("POST", "/branches/demo/appointments", json=body)


def post_booking(client, data, key="form-key-1", **fields):
    body = {"service": "B", "name": NAME, "phone": "+886912345678", "website": "", **fields}
    return client.post(data["book_url"], json=body, headers={"X-CSRFToken": data["csrf_token"], "Idempotency-Key": key})


def taipei_today():
    return datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=8))).date()


def booking_form(client, lang=None):
    """Open the booking page like a phone: its session cookie and the CSRF token from its data block."""
    page = client.get("/b/demo" + (f"?lang={lang}" if lang else ""))
    assert page.status_code == 200
    return page_data(page.data)


def now_minute() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


def add_appointment(app, code, start, *, local_date=None, status="booked", branch="demo", service="B", name=NAME):
    """A booking row written directly, for start times near the real clock."""
    with app.app_context():
        found = db.session.scalar(select(Branch).where(Branch.slug == branch))
        svc = db.session.scalar(select(Service).where(Service.code == service, Service.branch_id == found.id))
        appointment = Appointment(
            branch_id=found.id, service_id=svc.id, name=name, language="en", start_at=start,
            end_at=start + timedelta(minutes=svc.expected_minutes),
            local_date=local_date or start.astimezone(found.zone).date(), status=status,
            manage_token_hash=token_hash(code + "-manage-token"), check_in_code=code, sequence=0,
            created_at=datetime.now(timezone.utc))
        db.session.add(appointment)
        db.session.commit()
        return appointment.id


def axe_violations(page, axe_source) -> list[str]:
    """Serious and critical axe violations on the page as it is now (WCAG 2.x A and AA rules, best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.impact} ${v.id}: ${v.help} -> ` +
                      v.nodes.slice(0, 3).map(n => n.target.join(" ") + " (" + n.failureSummary.replace(/\\s+/g, " ") + ")").join("; "));
    }""")
    return [f"{page.url}: {line}" for line in found]


def save_full_page(page, tmp_path, name):
    """The whole phone page (it scrolls), kept under tmp_path and copied to /work/screens/."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / name)
    assert (SCREENS / name).stat().st_size > 0


def sign_in(page, base, email, password):
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def assert_ticket_bytes(data: bytes, label="A001", url=URL):
    # The label, as large as the printer prints text (GS ! 0x33: four times wide and high).
    assert re.search(GS + rb"!\x33.{0,12}" + label.encode() + b"\n", data, re.S), "large label missing"
    # The QR code of the tracking link, drawn by the printer: store the data (GS ( k ... 1 P 0), then print it.
    stored = url.encode()
    assert GS + b"(k" + (len(stored) + 3).to_bytes(2, "little") + b"1P0" + stored in data
    assert GS + b"(k\x03\x001Q0" in data
    # Fed and cut at the end (ESC d 6, GS V 0).
    assert data.endswith(ESC + b"d\x06" + GS + b"V\x00")


def page_data(html: bytes) -> dict:
    block = re.search(rb'<script type="application/json" id="page-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


def meta_csrf(html: bytes) -> str:
    return re.search(rb'<meta name="csrf-token" content="([^"]+)"', html).group(1).decode()


def post_form(client, url, data):
    """Post a form the way a browser does after opening the page: with the session's CSRF token."""
    token = csrf_token(client.get("/staff").data)  # base.html's sign-out form carries it on every page
    return client.post(url, data={**data, "csrf_token": token})


def csrf_token(html: bytes) -> str:
    return re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', html).group(1).decode()


def login_as(client, email, password=PASSWORD):
    page = client.get("/login")
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(page.data)})
    assert response.status_code == 302, response.data
    return response


def login(client, email=STAFF_EMAIL, password="demo-password"):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(page.data)})


def _walk_in_history(session, branch, until: date, weeks: int = 6):
    """Walk-ins through the demo branch's opening hours: busy late mornings, quiet afternoons."""
    services = {s.code: s for s in session.scalars(select(Service).where(Service.branch_id == branch.id))}
    rng = np.random.default_rng(9)
    number = 0
    day = until - timedelta(days=7 * weeks)
    while day < until:
        for start in planning.day_grid(branch, day, 30):
            local = start.astimezone(branch.zone)
            rate = 9 if 10 <= local.hour < 12 else 4
            for _ in range(int(rng.poisson(rate))):
                number += 1
                issued = start + timedelta(minutes=float(rng.uniform(0, 30)))
                code = "A" if number % 3 else "B"
                session.add(Ticket(
                    branch_id=branch.id, service_id=services[code].id, local_date=day, prefix=code, number=number,
                    label=f"{code}{number:04d}", status="done", priority="normal", effective_at=issued,
                    sort_key=issued, issued_at=issued, called_at=issued + timedelta(minutes=5),
                    started_at=issued + timedelta(minutes=5), finished_at=issued + timedelta(minutes=11),
                    token_hash=f"plan-history-{number}"))
        day += timedelta(days=1)
    session.commit()


def run_lobby(engine, counter_ids, total=TOTAL_TICKETS):
    issued_left = [total]
    lock = threading.Lock()
    kiosks_done = threading.Event()
    errors = []
    start_line = threading.Barrier(len(counter_ids) + KIOSKS)

    def kiosk(seed):
        rng = random.Random(seed)
        start_line.wait()
        with Session(engine) as session:
            while True:
                with lock:
                    if issued_left[0] == 0:
                        return
                    issued_left[0] -= 1
                priority = "accessibility" if rng.random() < 0.1 else "normal"
                queueing.issue_ticket(session, "demo", rng.choice("AB"), priority=priority, issued_by="kiosk")

    def counter(counter_id):
        start_line.wait()
        with Session(engine) as session:
            while True:
                ticket = queueing.call_next(session, counter_id)
                if ticket is None:
                    if kiosks_done.is_set():
                        # One more look: a ticket may have been committed after our empty answer.
                        ticket = queueing.call_next(session, counter_id)
                        if ticket is None:
                            return
                    else:
                        time.sleep(0.01)  # nobody waiting yet: let the kiosks have the CPU
                        continue
                queueing.finish(session, ticket.id)

    def guarded(fn, arg):
        try:
            fn(arg)
        except Exception as error:  # surfaced below: a thread must not die silently
            errors.append(error)

    kiosks = [threading.Thread(target=guarded, args=(kiosk, i)) for i in range(KIOSKS)]
    counters = [threading.Thread(target=guarded, args=(counter, cid)) for cid in counter_ids]
    for thread in kiosks + counters:
        thread.start()
    for thread in kiosks:
        thread.join()
    kiosks_done.set()
    for thread in counters:
        thread.join()
    assert errors == []


def make_counters(session, count):
    ids = []
    for i in range(count):
        ids.append(catalogue.create_counter(session, "demo", f"Race {i + 1:02d}", ["A", "B"], state="open").id)
    for name in ("Counter 1", "Counter 2", "Counter 3"):  # only the racing counters call
        catalogue.update_counter(session, session.scalar(select(catalogue.Counter.id).where(catalogue.Counter.name == name)), state="closed")
    return ids


def settle(seconds=0.5):
    time.sleep(seconds)  # let the publisher finish a round before asserting that nothing came


def received(live, name, timeout=5.0, where=lambda args: True):
    """Events of one name this client got so far, waiting up to `timeout` for one that matches."""
    deadline = time.monotonic() + timeout
    while True:
        got = [p["args"][0] for p in _drain(live) if p["name"] == name]
        if any(where(args) for args in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def _drain(live) -> list:
    live.kept = getattr(live, "kept", []) + live.get_received(NAMESPACE)
    return live.kept


def short_scenario(**changes) -> dict:
    """The nominal branch, but a two-hour day, so a test runs in seconds."""
    data = json.loads((SCENARIOS / "nominal.json").read_text())
    data.update({"open": "11:00", "close": "13:00", "days": 2,
                 "walk_in_rate_per_hour": [["11:00", 30.0], ["12:00", 40.0]]})
    data["counters"] = [{"name": c["name"], "services": c["services"], "shifts": [["11:00", "13:00"]]}
                        for c in data["counters"][:3]]
    data.update(changes)
    return data


def lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class Receiver:
    """A webhook receiver as a customer would write one: checks that one of the signatures is its
    secret's (two during a rotation) and the timestamp, then dedupes on the event id. `fail_first` answers 500 to the first N requests."""

    def __init__(self, secret: str, fail_first: int = 0):
        self.secret = secret
        self.fail_first = fail_first
        self.requests = 0
        self.accepted: list[dict] = []  # bodies with a valid signature, in arrival order
        self.bad_signatures = 0
        self.headers: list[dict] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Queue-Timestamp"]
                expected = hmac.new(receiver.secret.encode(), timestamp.encode() + b"." + raw,
                                    hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.requests += 1
                    receiver.headers.append(dict(self.headers))
                    receiver.raw.append(raw)
                    if receiver.requests <= receiver.fail_first:
                        status = 500
                    elif not any(hmac.compare_digest("sha256=" + expected, offered.strip())
                                 for offered in self.headers["X-Queue-Signature"].split(",")) or \
                            abs(time.time() - int(timestamp)) > 300:
                        receiver.bad_signatures += 1
                        status = 400
                    else:
                        body = json.loads(raw)
                        assert body["id"] == self.headers["X-Queue-Event-Id"]
                        receiver.accepted.append(body)
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> Tally:
        return Tally(body["id"] for body in self.accepted)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SmsGatewayFake:
    """An SMS gateway on loopback for the app's generic `http` SMS driver: records each message
    ({"to", "text"} from the JSON body of the driver's default template) and answers with an id.
    (tests/notifications/test_sms.py has the full fake, with scripted answers, for the drivers.)"""

    def __init__(self):
        self.messages: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                gateway.messages.append(json.loads(self.rfile.read(length).decode("utf-8")))
                raw = json.dumps({"message_id": f"m{len(gateway.messages)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.config = {"QUEUE_APP_SMS_DRIVER": "http", "QUEUE_APP_SMS_HTTP_URL":
                       f"http://127.0.0.1:{self.server.server_address[1]}/send"}
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def texts_to(self, number: str) -> list[str]:
        return [m.get("text") or m.get("body") or m.get("message") or "" for m in self.messages
                if number in (m.get("to"), m.get("dest"))]

    def last_code(self, number: str) -> str:
        return re.search(r"\b(\d{6})\b", self.texts_to(number)[-1]).group(1)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
