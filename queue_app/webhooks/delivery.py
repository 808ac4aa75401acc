"""Delivering the webhook outbox over HTTP, outside the domain: signing, one pinned connection per
attempt (no DNS rebinding to private addresses), retries with backoff."""
import functools
import hashlib
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.notifications import outbox
from queue_app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from queue_app.webhooks.operations import FIRST_BACKOFF, LEASE, MAX_ATTEMPTS, MAX_BACKOFF, TIMEOUT_S, USER_AGENT

log = logging.getLogger(__name__)


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
