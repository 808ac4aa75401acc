"""Signed outbound webhooks: endpoints per branch, an outbox written with the change, delivery with retries.

Events are written to the outbox (`webhook_delivery`, one row per event and endpoint) inside the
transaction that makes the change: a flush hook notices new ticket events and booking changes,
and a before-commit hook inserts the rows, whatever path made the change (API, kiosk, staff
page, timed job). The change and its webhooks commit or roll back together, so a crash loses
neither and a rolled-back change sends nothing. The insert is idempotent: (endpoint, event id) is
unique and a second insert of the same event is a no-op.

`deliver_due` is the only sender (a timed job). Each due row is claimed with one conditional
UPDATE (`pending -> sending` while still pending, as notify.send_due does for mail), so however
many schedulers run, one claims each row; it is POSTed outside any transaction, every attempt is
logged (`webhook_attempt`: time, duration, status code, error), a 2xx marks it `delivered`, and
anything else puts it back to `pending` with exponential backoff until MAX_ATTEMPTS. A sender
that dies mid-delivery leaves the row `sending`; after the lease it is taken again, so a receiver
may see an event id twice only after such a crash, and must dedupe on the id. Each attempt
resolves the receiver's host once, refuses it if any answer is a non-public address (unless
private destinations are allowed) and connects to exactly the addresses it checked (`post`).

Signature: HMAC-SHA256 with the endpoint's secret over `timestamp + "." + body` (the raw bytes of
the body), hex, in `X-Queue-Signature: sha256=<hex>`; the timestamp (Unix seconds) in
`X-Queue-Timestamp`, the event id in `X-Queue-Event-Id`, its type in `X-Queue-Event`. For a while
after a rotation (24 hours by default) the old secret signs too: `sha256=<new>, sha256=<old>`.
"""
import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, attributes

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core import events
from queue_app.core.errors import Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.notifications import outbox
from queue_app.tickets.models import Ticket, TicketEvent
from queue_app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

TICKET_EVENTS = ("ticket.issued", "ticket.called", "ticket.recalled", "ticket.started", "ticket.finished",
                 "ticket.no_show", "ticket.transferred", "ticket.left", "ticket.postponed", "ticket.expired")
BOOKING_EVENTS = ("booking.created", "booking.rescheduled", "booking.cancelled", "booking.checked_in",
                  "booking.no_show")
EVENT_TYPES = TICKET_EVENTS + BOOKING_EVENTS
PING = "ping"  # "Send a test event": delivered to that endpoint whatever it subscribed to

MAX_ATTEMPTS = 12  # 30 s, 1, 2, 4 ... 64 min, then hourly: about 6 hours in all
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
ROTATION_OVERLAP = timedelta(hours=24)  # how long the old secret keeps signing after a rotation
MAX_ROTATION_OVERLAP = timedelta(hours=168)
LEASE = timedelta(minutes=5)  # far longer than TIMEOUT_S: a row `sending` this long lost its sender
TIMEOUT_S = 10
USER_AGENT = "queue-app-webhooks/1"
SECRET_PREFIX = "whsec_"
KEEP_LOG = timedelta(days=30)  # delivered and failed rows older than this are purged

_COLLECTED = "queue_app_webhook_events"


# --- signing ---------------------------------------------------------------------------------------

def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """Hex HMAC-SHA256 over `timestamp.body` (the receiver computes the same and compares)."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature_header: str, *, tolerance_s: int = 300,
           now: float | None = None) -> bool:
    """The receiver's check: one of the signatures matches and the timestamp is recent (stops
    replays). During a rotation's overlap the header carries two: `sha256=NEW, sha256=OLD`."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    expected = "sha256=" + sign(secret, timestamp, body)
    offered = [part.strip() for part in (signature_header or "").split(",")]
    return age <= tolerance_s and any(hmac.compare_digest(expected, part) for part in offered)


def headers_for(delivery_event_id: str, event_type: str, secret: str, body: str, timestamp: int,
                previous_secret: str | None = None) -> dict:
    signatures = ["sha256=" + sign(key, timestamp, body) for key in (secret, previous_secret) if key]
    return {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Queue-Event-Id": delivery_event_id, "X-Queue-Event": event_type,
        "X-Queue-Timestamp": str(timestamp), "X-Queue-Signature": ", ".join(signatures),
    }


# --- endpoints -------------------------------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if len(url) > 500 or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("invalid_field", "url: an http:// or https:// address.", {"url": ["An http(s) URL."]})
    if parts.username or parts.password:
        raise Invalid("invalid_field", "url: no user name or password in the address; the signature "
                      "authenticates the sender.", {"url": ["No credentials in the URL."]})
    return url


def _check_types(event_types) -> list[str]:
    wanted = sorted(set(event_types or []))
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if not wanted or unknown:
        raise Invalid("invalid_field", f"event_types: one or more of {', '.join(EVENT_TYPES)}.",
                      {"event_types": [f"Unknown: {', '.join(unknown)}" if unknown else "Choose at least one."]})
    return wanted


@dataclass
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(session: Session, branch_slug: str, url: str, event_types, *, description: str = "",
                    secret: str | None = None, active: bool = True, created_by_id: int | None = None,
                    now: datetime | None = None) -> CreatedEndpoint:
    url, types = _check_url(url), _check_types(event_types)
    secret = secret or new_secret()
    if len(secret) < 16 or len(secret) > 100:
        raise Invalid("invalid_field", "secret: 16 to 100 characters.", {"secret": ["16 to 100 characters."]})
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        endpoint = WebhookEndpoint(branch_id=branch.id, url=url, description=(description or "").strip()[:200],
                                   secret=secret, event_types=types, active=active, created_at=now or utcnow(),
                                   created_by_id=created_by_id)
        session.add(endpoint)
    return CreatedEndpoint(endpoint, secret)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("webhook_not_found", f"No webhook {endpoint_id}.")
    return endpoint


def branch_endpoints(session: Session, branch_id: int) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.branch_id == branch_id)
                                .order_by(WebhookEndpoint.id)))


def update_endpoint(session: Session, endpoint_id: int, **fields) -> WebhookEndpoint:
    with write_transaction(session):
        endpoint = get_endpoint(session, endpoint_id)
        if "url" in fields:
            endpoint.url = _check_url(fields["url"])
        if "event_types" in fields:
            endpoint.event_types = _check_types(fields["event_types"])
        if "description" in fields:
            endpoint.description = (fields["description"] or "").strip()[:200]
        if "active" in fields:
            endpoint.active = bool(fields["active"])
    return endpoint


def rotate_secret(session: Session, endpoint_id: int, *, overlap: timedelta = ROTATION_OVERLAP,
                  now: datetime | None = None) -> str:
    """A new secret, signing from the next attempt on (retries of older events too). For `overlap`
    the old one signs as well, so a receiver can switch secrets at its own pace without
    refusing a delivery; a second rotation within the window ends the first one's overlap."""
    if not timedelta(0) <= overlap <= MAX_ROTATION_OVERLAP:
        raise Invalid("invalid_field", "overlap: 0 to 168 hours.", {"overlap_hours": ["0 to 168 hours."]})
    secret = new_secret()
    with write_transaction(session):
        endpoint = get_endpoint(session, endpoint_id)
        endpoint.previous_secret = endpoint.secret if overlap else None
        endpoint.previous_secret_until = (now or utcnow()) + overlap if overlap else None
        endpoint.secret = secret
    return secret


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    """The endpoint, its pending deliveries and its delivery log."""
    with write_transaction(session):
        endpoint = get_endpoint(session, endpoint_id)
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
        session.delete(endpoint)


def send_test(session: Session, endpoint_id: int, now: datetime | None = None) -> WebhookDelivery:
    """Queue a `ping` event for this endpoint; the next delivery run sends it."""
    now = now or utcnow()
    with write_transaction(session):
        endpoint = get_endpoint(session, endpoint_id)
        event_id = new_event_id()
        body = _body(event_id, PING, now, endpoint.branch.slug, {"message": "Test event from the manage page."})
        _insert(session, [{"endpoint_id": endpoint.id, "event_id": event_id, "event_type": PING, "body": body}], now)
        return session.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                            WebhookDelivery.event_id == event_id))


def retry_delivery(session: Session, delivery_id: int, now: datetime | None = None) -> WebhookDelivery:
    """A failed (or cancelled) delivery gets one more attempt at once."""
    with write_transaction(session):
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise NotFound("delivery_not_found", f"No webhook delivery {delivery_id}.")
        if delivery.status in ("failed", "cancelled"):
            delivery.status, delivery.next_attempt_at = "pending", now or utcnow()
    return delivery


def deliveries(session: Session, endpoint_id: int, *, limit: int = 50, status: str | None = None
               ) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                                       .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)):
            found[attempt.delivery_id].append(attempt)
    return found


# --- the outbox: rows written in the transaction of the change ------------------------------------

def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def _body(event_id: str, event_type: str, at: datetime, branch_slug: str, data: dict) -> str:
    return json.dumps({"id": event_id, "type": event_type, "created_at": _iso(at), "branch": branch_slug,
                       "data": data}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _insert(session: Session, rows: list[dict], now: datetime) -> None:
    """Idempotent: an (endpoint, event id) already queued is left as it is."""
    if not rows:
        return
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    values = [{**row, "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": "",
               "created_at": now} for row in rows]
    session.execute(insert(WebhookDelivery).values(values)
                    .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]))


def enqueue(session: Session, branch_id: int, event_type: str, data: dict, *, at: datetime,
            event_id: str | None = None) -> str:
    """Queue one event for every active endpoint of the branch that wants it (inside the caller's
    transaction). Returns the event id; passing the same id again queues nothing new."""
    event_id = event_id or new_event_id()
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.branch_id == branch_id, WebhookEndpoint.active.is_(True))
    ).all()
    wanted = [endpoint_id for endpoint_id, types in endpoints if event_type in (types or [])]
    if wanted:
        slug = session.get(Branch, branch_id).slug
        body = _body(event_id, event_type, at, slug, data)
        _insert(session, [{"endpoint_id": e, "event_id": event_id, "event_type": event_type, "body": body}
                          for e in wanted], utcnow())
    return event_id


def _ticket_data(session: Session, row: TicketEvent) -> dict:
    ticket = session.get(Ticket, row.ticket_id)
    service = session.get(Service, ticket.service_id)
    counter = session.get(Counter, row.counter_id or ticket.counter_id) if (row.counter_id or ticket.counter_id) else None
    # Numbers and states only, never a customer's name or contact (receivers may be third parties).
    return {"ticket": {"id": ticket.id, "label": ticket.label, "service": service.code, "status": ticket.status,
                       "priority": ticket.priority, "local_date": ticket.local_date.isoformat(),
                       "issued_at": _iso(ticket.issued_at), "appointment": _appointment_id(session, ticket)},
            "counter": {"id": counter.id, "name": counter.name} if counter else None,
            "details": {k: v for k, v in (row.data or {}).items() if k in ("counter", "service", "priority", "from",
                                                                           "to", "places", "recall")}}


def _appointment_id(session: Session, ticket: Ticket) -> int | None:
    if ticket.priority != "appointment":
        return None
    return session.scalar(select(Appointment.id).where(Appointment.ticket_id == ticket.id))


def _booking_data(session: Session, appointment: Appointment) -> dict:
    service = session.get(Service, appointment.service_id)
    return {"booking": {"id": appointment.id, "service": service.code, "status": appointment.status,
                        "start": _iso(appointment.start_at), "end": _iso(appointment.end_at),
                        "local_date": appointment.local_date.isoformat(), "sequence": appointment.sequence,
                        "customer_id": appointment.customer_id, "ticket_id": appointment.ticket_id}}


_BOOKING_STATUS_EVENTS = {"cancelled": "booking.cancelled", "checked_in": "booking.checked_in",
                          "no_show": "booking.no_show"}


def _collect(session: Session, _context) -> None:
    """Remember what this flush changed (new ticket events, booking changes); written before commit."""
    if session.info.get(events.QUIET_KEY):
        return
    found = []
    for obj in session.new:
        if isinstance(obj, TicketEvent):
            found.append(("ticket", obj, "ticket." + obj.type))
        elif isinstance(obj, Appointment):
            found.append(("booking", obj, "booking.created"))
    for obj in session.dirty:
        if not isinstance(obj, Appointment) or obj in session.new:
            continue
        status = attributes.get_history(obj, "status")
        start = attributes.get_history(obj, "start_at")
        if status.added and status.deleted and status.added[0] in _BOOKING_STATUS_EVENTS:
            found.append(("booking", obj, _BOOKING_STATUS_EVENTS[status.added[0]]))
        elif start.added and start.deleted and obj.status == "booked":
            found.append(("booking", obj, "booking.rescheduled"))
    if found:
        session.info.setdefault(_COLLECTED, []).extend(found)


def _write_outbox(session: Session) -> None:
    if session.info.get(events.QUIET_KEY):
        session.info.pop(_COLLECTED, None)
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: collect its changes now
    collected = session.info.pop(_COLLECTED, None)
    if not collected:
        return
    branches = {obj.branch_id for _kind, obj, _type in collected}
    subscribed = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.branch_id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.branch_id.in_(branches), WebhookEndpoint.active.is_(True))
    ).all()
    if not subscribed:
        return
    now = utcnow()
    rows = []
    for kind, obj, event_type in collected:
        wanted = [e for e, branch_id, types in subscribed if branch_id == obj.branch_id and event_type in (types or [])]
        if not wanted:
            continue
        if kind == "ticket":
            data, at = _ticket_data(session, obj), obj.at
        else:
            data, at = _booking_data(session, obj), now
        event_id = new_event_id()
        body = _body(event_id, event_type, at, session.get(Branch, obj.branch_id).slug, data)
        rows += [{"endpoint_id": e, "event_id": event_id, "event_type": event_type, "body": body} for e in wanted]
    _insert(session, rows, now)
    session.info.pop(_COLLECTED, None)  # the insert's autoflush collects nothing new, but be sure


def _forget(session: Session) -> None:
    session.info.pop(_COLLECTED, None)


def install() -> None:
    """Write the outbox with every commit of every Session (idempotent; webhooks.init_app calls it)."""
    if not event.contains(Session, "after_flush", _collect):
        event.listen(Session, "after_flush", _collect)
        event.listen(Session, "before_commit", _write_outbox)
        event.listen(Session, "after_rollback", _forget)


# --- delivery --------------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    handled_ids: list[int] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return len(self.handled_ids)


@dataclass
class Outcome:
    status_code: int | None
    error: str
    duration_ms: int
    refused: bool = False  # the destination is not allowed (a non-public address): not retried


# --- the connection: resolved once, checked, and connected to exactly what was checked --------------
#
# The receiver's host name is resolved once per attempt (`resolve`, or the `resolver` passed in).
# Unless private destinations are allowed, every answer must be a public address; the connection
# then goes to one of those same addresses (`_connect_pinned`), never to a second lookup of the
# name, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot
# reach loopback or the internal network. The Host header, TLS SNI and the certificate check use
# the host name from the URL.

Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP addresses as text, in preference order


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system resolver), each once, in the order given."""
    found = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0]).split("%")[0]
        if address not in found:
            found.append(address)
    return found


def _non_public(text: str) -> bool:
    address = ipaddress.ip_address(text)
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:127.0.0.1 reaches 127.0.0.1
        address = address.ipv4_mapped
    return (not address.is_global or address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


def refusal(host: str, addresses: list[str]) -> str | None:
    """None when every address is public; else why the destination is refused (one private answer is enough)."""
    for text in addresses:
        try:
            blocked = _non_public(text)
        except ValueError:
            return f"{host} resolves to an address that is not an IP address ({text!r})"
        if blocked:
            return f"{host} resolves to a non-public address ({text}); QUEUE_APP_WEBHOOK_ALLOW_PRIVATE is off"
    return None


def _connect_pinned(pinned: list[str], address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """Open the socket to one of the checked addresses (in order, the first that answers), whatever
    the name in `address` resolves to now."""
    _host, port = address
    failure: OSError | None = None
    for ip in pinned:
        try:
            sock = socket.create_connection((ip, port), timeout, source_address)
        except OSError as error:
            failure = error
            continue
        if ipaddress.ip_address(sock.getpeername()[0].split("%")[0]) != ipaddress.ip_address(ip):
            sock.close()  # cannot happen when connecting to an IP literal; never send anywhere else
            raise OSError(f"connected to {sock.getpeername()[0]}, not the checked {ip}")
        return sock
    raise failure or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, pinned: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._create_connection = functools.partial(_connect_pinned, list(pinned))  # how connect() opens its socket


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the pinned address; SNI and the certificate check use the host name (connect() wraps
    the socket with server_hostname=self.host)."""

    def __init__(self, host: str, port: int, pinned: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._create_connection = functools.partial(_connect_pinned, list(pinned))


class Refused(Exception):
    """The destination may not be contacted (a non-public address): no retry."""


def post(url: str, headers: dict, body: str, timeout: float = TIMEOUT_S, *, allow_private: bool = False,
         resolver: Resolver = resolve) -> Outcome:
    """One POST: resolve the host once, refuse it unless every answer is public (or private
    destinations are allowed), connect to those very addresses. Redirects are not followed (a 3xx
    is an answer); proxies from the environment are not used (they would resolve the name again)."""
    started = time.monotonic()
    code, error, refused = None, "", False
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError, ValueError) as failure:
            raise OSError(f"cannot resolve {host}: {failure}") from None
        if not addresses:
            raise OSError(f"cannot resolve {host}: no addresses")
        reason = None if allow_private else refusal(host, addresses)
        if reason:
            raise Refused(reason)
        kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = kind(host, port, addresses, timeout)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target, body=body.encode(), headers=headers)
            response = connection.getresponse()
            code = response.status
            answer = response.read(1024 if 200 <= code < 300 else 300)
            if not 200 <= code < 300:
                error = answer.decode("utf-8", "replace").strip()
        finally:
            connection.close()
    except Refused as reason:
        refused, error = True, str(reason)
    except Exception as failure:  # connection refused, timeout, TLS: retried like an error status
        error = f"{type(failure).__name__}: {failure}"
    return Outcome(code, error[:1000], int((time.monotonic() - started) * 1000), refused)


def backoff(attempts: int) -> timedelta:
    return outbox.backoff(attempts, FIRST_BACKOFF, MAX_BACKOFF)


def deliver_due(session: Session, *, now: datetime | None = None, batch: int = 50, allow_private: bool = True,
                timeout: float = TIMEOUT_S, resolver: Resolver = resolve) -> DeliveryReport:
    """Deliver the due rows (at most `batch`). Safe to run from several threads or processes at once.

    `allow_private=False` (the app's default, QUEUE_APP_WEBHOOK_ALLOW_PRIVATE) refuses a receiver
    whose host has any non-public address; `resolver` replaces the system's DNS look-up (tests)."""
    report = DeliveryReport()
    now = now or utcnow()
    outbox.recover_stuck(session, WebhookDelivery, now, MAX_ATTEMPTS, "sender stopped while delivering (lease expired)")
    for delivery_id in outbox.due_ids(session, WebhookDelivery, now, batch):
        with write_transaction(session):
            if not outbox.claim(session, WebhookDelivery, delivery_id, now, LEASE):
                continue  # another worker has it
            row = session.execute(
                select(WebhookDelivery.event_id, WebhookDelivery.event_type, WebhookDelivery.body,
                       WebhookDelivery.attempts, WebhookEndpoint.url, WebhookEndpoint.secret, WebhookEndpoint.active,
                       WebhookEndpoint.previous_secret, WebhookEndpoint.previous_secret_until)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id == delivery_id)
            ).one()
            if not row.active:
                session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                .values(status="cancelled", last_error="endpoint disabled")
                                .execution_options(synchronize_session=False))
        report.handled_ids.append(delivery_id)
        if not row.active:
            report.cancelled += 1
            continue
        # Outside any transaction: a slow receiver must not hold a database lock.
        started = utcnow()
        previous = row.previous_secret if row.previous_secret_until and started < row.previous_secret_until else None
        outcome = post(row.url, headers_for(row.event_id, row.event_type, row.secret, row.body, int(time.time()),
                                            previous), row.body, timeout, allow_private=allow_private,
                       resolver=resolver)
        attempts = row.attempts + 1
        ok = outcome.status_code is not None and 200 <= outcome.status_code < 300
        final = not ok and (attempts >= MAX_ATTEMPTS or outcome.refused)
        error = outcome.error if not ok else ""
        if not ok and outcome.status_code is not None:
            error = f"HTTP {outcome.status_code}" + (f": {outcome.error}" if outcome.error else "")
        values = {"attempts": attempts, "last_attempt_at": started, "last_status_code": outcome.status_code,
                  "last_error": error[:1000]}
        if ok:
            values.update(status="delivered", delivered_at=utcnow(), next_attempt_at=started)
            report.delivered += 1
        elif final:
            values.update(status="failed", next_attempt_at=started)
            report.failed += 1
        else:
            values.update(status="pending", next_attempt_at=utcnow() + backoff(attempts))
            report.retried += 1
            log.warning("webhook delivery %s (%s to %s) failed, attempt %s: %s", delivery_id, row.event_type,
                        row.url, attempts, error)
        with write_transaction(session):
            session.add(WebhookAttempt(delivery_id=delivery_id, number=attempts, started_at=started,
                                       duration_ms=outcome.duration_ms, status_code=outcome.status_code,
                                       error=error[:1000]))
            outbox.settle(session, WebhookDelivery, delivery_id, values)
    return report


def purge_log(session: Session, *, now: datetime | None = None, keep: timedelta = KEEP_LOG) -> int:
    """Delivered, failed and cancelled rows (with their attempts) older than `keep`."""
    cutoff = (now or utcnow()) - keep
    with write_transaction(session):
        old = select(WebhookDelivery.id).where(WebhookDelivery.status.in_(("delivered", "failed", "cancelled")),
                                               WebhookDelivery.created_at < cutoff)
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
        return session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old))).rowcount or 0
