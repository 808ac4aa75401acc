"""SMS rules that do not depend on a gateway: how many parts a text costs, who said STOP, and what
a gateway's delivery report does to an outbox row. Plain functions over a session and `now`.

Segments. A text that fits the GSM 03.38 alphabet is sent in 7-bit units: 160 in one message,
153 per part when split (the rest of each part is the concatenation header). Characters of the
extension table (`^{}\\[~]|€` and form feed) cost two units, an escape and the character, and the
two are never split across parts. Any other character (Chinese, most emoji) makes the whole text
UCS-2: 70 UTF-16 units in one message, 67 per part; a character outside the BMP is two units and
is not split either. Gateways bill per part, and long texts arrive out of order on some phones, so
the sender stores the count and refuses texts over a maximum (QUEUE_APP_SMS_MAX_SEGMENTS).

Opt-out. A reply of STOP (and the other words below) to any of our messages, a staff action, or
a gateway refusing a message because the number said STOP at the carrier (Twilio 21610), puts
the number on the opt-out list; the sender then marks that number's SMS rows `skipped`
(not sent, not retried). START or UNSTOP takes it off. Numbers are kept in E.164, normalised the
way customer phones are (customers/identity.py).
"""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.core.errors import Invalid, NotFound
from queue_app.core.transaction import write_transaction
from queue_app.customers.identity import normalise_phone
from queue_app.notifications.models import Notification, SmsOptOut

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
DEFAULT_MAX_SEGMENTS = 6

# Carriers' and Twilio's standard opt-out words, and the Chinese "unsubscribe" in both scripts.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退訂", "退订"})
START_WORDS = frozenset({"START", "UNSTOP"})

# Gateway status words -> ours (DELIVERY_STATES in models.py). Twilio's names, which most
# gateways share; `read` is a delivered message the phone has opened.
STATUS_WORDS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued",
    "sent": "sent", "delivered": "delivered", "read": "delivered",
    "failed": "failed", "undelivered": "undelivered", "canceled": "failed", "cancelled": "failed",
}
# A report may arrive after a later one (callbacks are not ordered): never step back.
_RANK = {"": 0, "queued": 1, "sent": 2, "delivered": 3, "failed": 3, "undelivered": 3}


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int


def _pack(costs: list[int], single: int, part: int) -> int:
    """Messages needed for characters of these costs: one if all fit `single`, else parts of `part`
    filled in order, a character never split between two parts."""
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def segments(text: str) -> Segments:
    """How a gateway will split `text` (empty text: one message)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return Segments("GSM-7", sum(costs), _pack(costs, GSM7_SINGLE, GSM7_PART))
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return Segments("UCS-2", sum(costs), _pack(costs, UCS2_SINGLE, UCS2_PART))


def normalise_number(raw: str) -> str:
    """E.164 when the number parses (as customer phones are stored); else the trimmed text, so a
    gateway's odd sender format still matches itself."""
    try:
        return normalise_phone(raw)
    except Invalid:
        return (raw or "").strip()[:40]


def keyword(body: str) -> str | None:
    """"stop", "start" or None for an inbound text: the whole message, one word, any case."""
    word = (body or "").strip().strip(".!。！").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def is_opted_out(session: Session, number: str) -> bool:
    row = session.get(SmsOptOut, normalise_number(number))
    return bool(row and row.opted_out)


def set_opt_out(session: Session, number: str, opted_out: bool, *, source: str, detail: str = "",
                now: datetime) -> SmsOptOut:
    """Put the number on the opt-out list or take it off (a row is kept either way)."""
    normalised = normalise_number(number)
    if not normalised:
        raise Invalid("invalid_field", "phone: not a phone number.", {"phone": ["Not a phone number."]})
    with write_transaction(session):
        return _put_opt_out(session, normalised, opted_out, source, detail, now)


def _put_opt_out(session: Session, normalised: str, opted_out: bool, source: str, detail: str,
                 now: datetime) -> SmsOptOut:
    row = session.get(SmsOptOut, normalised)
    if row is None:
        row = SmsOptOut(number=normalised)
        session.add(row)
    row.opted_out, row.source, row.detail, row.updated_at = opted_out, source, detail[:200], now
    return row


def refused_as_opted_out(session: Session, number: str, *, detail: str, now: datetime) -> SmsOptOut | None:
    """A gateway refused a message because the number opted out at the carrier (Twilio 21610): it
    goes on our list too (source "carrier"), so the sender skips its other messages instead of
    trying each. Inside the caller's write transaction (the one that records the failed row).
    START or staff take it off as usual; None for a recipient that is not a number at all."""
    normalised = normalise_number(number)
    if not normalised:
        return None
    return _put_opt_out(session, normalised, True, "carrier", detail, now)


def inbound(session: Session, sender: str, body: str, *, now: datetime) -> str | None:
    """An inbound text from `sender`: STOP opts it out, START opts it back in; anything else is
    ignored. Returns "stop", "start" or None."""
    word = keyword(body)
    if word is not None:
        set_opt_out(session, sender, word == "stop", source="reply", detail=(body or "").strip(), now=now)
    return word


def delivery_status(word: str) -> str:
    """Ours for a gateway's status word; Invalid for a word we do not know."""
    status = STATUS_WORDS.get((word or "").strip().lower())
    if status is None:
        raise Invalid("invalid_field", f"status: unknown delivery status '{word}'.",
                      {"status": [f"Not one of {', '.join(sorted(STATUS_WORDS))}."]})
    return status


def record_delivery(session: Session, provider: str, message_id: str, word: str, *, error: str = "",
                    carrier_opt_out: bool = False, now: datetime) -> Notification:
    """A gateway's report on a message it took: the row's `delivery_status` moves forward (a late
    `sent` after `delivered` changes nothing). NotFound for an id no row of that gateway has.
    `carrier_opt_out`: the report says the number opted out at the carrier (Twilio 21610); a
    failed one puts the number on our list, as a refused send does."""
    status = delivery_status(word)
    with write_transaction(session):
        row = session.scalars(select(Notification).where(
            Notification.provider == provider, Notification.provider_message_id == message_id)).first()
        if row is None:
            raise NotFound("message_not_found", f"No message {message_id} from {provider}.")
        final = _RANK.get(row.delivery_status, 0) == max(_RANK.values())
        if not final and _RANK[status] >= _RANK.get(row.delivery_status, 0):
            row.delivery_status, row.delivery_updated_at = status, now
            if error:
                row.last_error = error[:1000]
        if carrier_opt_out and status in ("failed", "undelivered") and row.channel == "sms":
            refused_as_opted_out(session, row.recipient, detail=error or "opted out at the carrier", now=now)
    return row
