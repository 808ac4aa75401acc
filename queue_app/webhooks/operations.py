"""Signed outbound webhooks: endpoints per branch, an outbox written with the change, delivery with retries.

Events are written to the outbox (`webhook_delivery`, one row per event and endpoint) inside the
transaction that makes the change: ticket events come from the transaction's announcements (the
event log announces every row it writes, core/events.py), booking changes from a flush hook, and
a before-commit hook inserts the rows, whatever path made the change (API, kiosk, staff page,
timed job). The change and its webhooks commit or roll back together, so a crash loses
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
import json
import logging
import secrets
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, event, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, attributes

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core import events
from queue_app.core.errors import Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.tickets.models import Ticket
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
_TAKEN = "queue_app_webhook_ticket_events_taken"  # how many of the transaction's announcements were read
_ENDPOINTS_CHANGED = "queue_app_webhook_endpoints_changed"

# How long another process's new endpoint, re-activation or change of event types may go unseen
# here (see _active_endpoints). Two seconds: a receiver added on one instance gets every event from
# about the time the manager saved it, and each process re-reads a branch's endpoints at most once
# per two seconds instead of on every commit.
ENDPOINTS_TTL_S = 2.0


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


def _insert_for_active(session: Session, endpoint_ids: list[int], event_id: str, event_type: str, body: str,
                       now: datetime) -> None:
    """One event's rows, for those of `endpoint_ids` that still exist and are active as this
    statement runs: the ids come from the cache, which may not yet know of a deletion or
    deactivation made by another process (and a row for a deleted endpoint would break the
    change's own commit on its foreign key). Idempotent like `_insert`."""
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    columns = WebhookDelivery.__table__.c
    constants = {"event_id": event_id, "event_type": event_type, "body": body, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "last_error": "", "created_at": now}
    chosen = (select(WebhookEndpoint.id, *(literal(v, columns[k].type) for k, v in constants.items()))
              .where(WebhookEndpoint.id.in_(endpoint_ids), WebhookEndpoint.active.is_(True)))
    # SQLite parses INSERT ... SELECT ... ON CONFLICT only when the SELECT has a WHERE: it has.
    session.execute(insert(WebhookDelivery).from_select(["endpoint_id", *constants], chosen)
                    .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]))


# --- the active endpoints, cached per engine and branch -------------------------------------------
# Every commit with a ticket event or a booking change needs its branch's active endpoints; reading
# them each time cost 3.5 % of an issue and 12-15 % of a call. A change made through any session of
# this process drops the engine's cached entries when it commits (_endpoints_settled); one made by
# another process is read when the entry expires, ENDPOINTS_TTL_S after it was read. Rows are then
# inserted only for endpoints still active (_insert_for_active), so a deletion or deactivation
# elsewhere takes effect at once: only additions elsewhere wait up to ENDPOINTS_TTL_S.

class _EndpointCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_branch: dict[int, tuple[float, list[tuple[int, tuple[str, ...]]]]] = {}  # expiry, (id, types)
        # Bumped by each invalidation: a read that began before it must not store what it read.
        self.generation = 0


_endpoint_caches: "weakref.WeakKeyDictionary[Engine, _EndpointCache]" = weakref.WeakKeyDictionary()


def _cache_of(engine: Engine) -> _EndpointCache:
    cache = _endpoint_caches.get(engine)
    if cache is None:
        cache = _endpoint_caches.setdefault(engine, _EndpointCache())
    return cache


def forget_endpoints(engine: Engine) -> None:
    """Drop what this process cached of `engine`'s endpoints (after a change made by other means
    than this module's sessions, e.g. a restore)."""
    cache = _cache_of(engine)
    with cache.lock:
        cache.generation += 1
        cache.by_branch.clear()


def _active_endpoints(session: Session, branch_ids) -> dict[int, list[tuple[int, tuple[str, ...]]]]:
    """Per branch, its active endpoints as (id, event types)."""
    if session.info.get(_ENDPOINTS_CHANGED):  # changed in this very transaction: read them as they are now
        return _read_endpoints(session, branch_ids)
    cache = _cache_of(session.get_bind().engine)
    now = time.monotonic()
    found, missing = {}, []
    for branch_id in branch_ids:
        entry = cache.by_branch.get(branch_id)
        if entry is not None and entry[0] > now:
            found[branch_id] = entry[1]
        else:
            missing.append(branch_id)
    if missing:
        generation = cache.generation
        read = _read_endpoints(session, missing)
        with cache.lock:
            if cache.generation == generation:
                for branch_id in missing:
                    cache.by_branch[branch_id] = (now + ENDPOINTS_TTL_S, read[branch_id])
        found.update(read)
    return found


def _read_endpoints(session: Session, branch_ids) -> dict[int, list[tuple[int, tuple[str, ...]]]]:
    found: dict[int, list[tuple[int, tuple[str, ...]]]] = {branch_id: [] for branch_id in branch_ids}
    for endpoint_id, branch_id, types in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.branch_id, WebhookEndpoint.event_types)
            .where(WebhookEndpoint.branch_id.in_(found), WebhookEndpoint.active.is_(True))
            .order_by(WebhookEndpoint.id)):
        found[branch_id].append((endpoint_id, tuple(types or ())))
    return found


def enqueue(session: Session, branch_id: int, event_type: str, data: dict, *, at: datetime,
            event_id: str | None = None) -> str:
    """Queue one event for every active endpoint of the branch that wants it (inside the caller's
    transaction). Returns the event id; passing the same id again queues nothing new."""
    event_id = event_id or new_event_id()
    wanted = [e for e, types in _active_endpoints(session, [branch_id])[branch_id] if event_type in types]
    if wanted:
        slug = session.get(Branch, branch_id).slug
        _insert_for_active(session, wanted, event_id, event_type, _body(event_id, event_type, at, slug, data),
                           utcnow())
    return event_id


def _ticket_data(session: Session, row: dict) -> dict:
    """`row`: a ticket event's columns, as written (tickets/event_log.py)."""
    ticket = session.get(Ticket, row["ticket_id"])
    service = session.get(Service, ticket.service_id)
    counter_id = row["counter_id"] or ticket.counter_id
    counter = session.get(Counter, counter_id) if counter_id else None
    # Numbers and states only, never a customer's name or contact (receivers may be third parties).
    return {"ticket": {"id": ticket.id, "label": ticket.label, "service": service.code, "status": ticket.status,
                       "priority": ticket.priority, "local_date": ticket.local_date.isoformat(),
                       "issued_at": _iso(ticket.issued_at), "appointment": _appointment_id(session, ticket)},
            "counter": {"id": counter.id, "name": counter.name} if counter else None,
            "details": {k: v for k, v in (row["data"] or {}).items() if k in ("counter", "service", "priority", "from",
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


def _take_ticket_events(session: Session, found: list) -> None:
    """Ticket events announced since the last take (event_log.record writes them as plain rows)."""
    announced = events.pending(session)
    taken = session.info.get(_TAKEN, 0)
    for change in announced[taken:]:
        if change.logged is not None:
            found.append(("ticket", change.logged, "ticket." + change.type, change.branch_id))
    session.info[_TAKEN] = len(announced)


def _collect(session: Session, _context) -> None:
    """Remember what this flush changed (booking changes; and the ticket events written since the
    last flush, first, in the order an object-per-row log had them); written before commit."""
    if not session.info.get(_ENDPOINTS_CHANGED) and any(
            isinstance(obj, WebhookEndpoint) for changed in (session.new, session.dirty, session.deleted)
            for obj in changed):
        session.info[_ENDPOINTS_CHANGED] = True  # the cache forgets them when this transaction ends
    if session.info.get(events.QUIET_KEY):
        return
    found = []
    _take_ticket_events(session, found)
    for obj in session.new:
        if isinstance(obj, Appointment):
            found.append(("booking", obj, "booking.created", obj.branch_id))
    for obj in session.dirty:
        if not isinstance(obj, Appointment) or obj in session.new:
            continue
        status = attributes.get_history(obj, "status")
        start = attributes.get_history(obj, "start_at")
        if status.added and status.deleted and status.added[0] in _BOOKING_STATUS_EVENTS:
            found.append(("booking", obj, _BOOKING_STATUS_EVENTS[status.added[0]], obj.branch_id))
        elif start.added and start.deleted and obj.status == "booked":
            found.append(("booking", obj, "booking.rescheduled", obj.branch_id))
    if found:
        session.info.setdefault(_COLLECTED, []).extend(found)


def _write_outbox(session: Session) -> None:
    if session.info.get(events.QUIET_KEY):
        _forget(session)
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: collect its changes now
    collected = session.info.pop(_COLLECTED, [])
    _take_ticket_events(session, collected)  # written after the last flush
    session.info.pop(_TAKEN, None)  # the announcements end with this transaction
    if not collected:
        return
    subscribed = _active_endpoints(session, {branch_id for *_, branch_id in collected})
    if not any(subscribed.values()):
        return
    now = utcnow()
    for kind, obj, event_type, branch_id in collected:
        wanted = [e for e, types in subscribed[branch_id] if event_type in types]
        if not wanted:
            continue
        if kind == "ticket":
            data, at = _ticket_data(session, obj), obj["at"]
        else:
            data, at = _booking_data(session, obj), now
        event_id = new_event_id()
        body = _body(event_id, event_type, at, session.get(Branch, branch_id).slug, data)
        _insert_for_active(session, wanted, event_id, event_type, body, now)
    session.info.pop(_COLLECTED, None)  # the insert's autoflush collects nothing new, but be sure


def _forget(session: Session) -> None:
    session.info.pop(_COLLECTED, None)
    session.info.pop(_TAKEN, None)


def _endpoints_settled(session: Session) -> None:
    """After a commit or rollback of a transaction that changed endpoints: this process's cache
    reads them again (after a rollback too, as the cheap and always safe choice)."""
    if session.info.pop(_ENDPOINTS_CHANGED, None):
        forget_endpoints(session.get_bind().engine)


def install() -> None:
    """Write the outbox with every commit of every Session (idempotent; webhooks.init_app calls it)."""
    if not event.contains(Session, "after_flush", _collect):
        event.listen(Session, "after_flush", _collect)
        event.listen(Session, "before_commit", _write_outbox)
        event.listen(Session, "after_rollback", _forget)
        event.listen(Session, "after_commit", _endpoints_settled)
        event.listen(Session, "after_rollback", _endpoints_settled)


def purge_log(session: Session, *, now: datetime | None = None, keep: timedelta = KEEP_LOG) -> int:
    """Delivered, failed and cancelled rows (with their attempts) older than `keep`."""
    cutoff = (now or utcnow()) - keep
    with write_transaction(session):
        old = select(WebhookDelivery.id).where(WebhookDelivery.status.in_(("delivered", "failed", "cancelled")),
                                               WebhookDelivery.created_at < cutoff)
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
        return session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old))).rowcount or 0
