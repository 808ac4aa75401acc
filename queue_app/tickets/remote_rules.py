"""The rules of remote tickets (joined from home, tickets/remote.py) that the queue itself uses:
when to leave, the branch's daily "I'm here" code, the holder's tracking token, and the message
of a ticket held because its holder was not there yet when called (queueing.call_next).

Kept apart from remote.py, which issues tickets through queueing.py: queueing imports this.
"""
import base64
import hashlib
import hmac
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from queue_app.notifications.texts import N_
from queue_app.tickets import holder_messages
from queue_app.tickets.estimates import Estimate
from queue_app.tickets.models import Ticket

# The slack between arriving and the earliest likely call is the branch's setting
# (Branch.set_off_margin_minutes): the set-off message goes out when the estimate's low end is at
# most the trip plus it, and "Leave by" keeps it too.
TRAVEL_ON_PAGE = (5, 60)  # what the join page offers; the API takes 0-120
TRAVEL_LIMITS = (0, 120)
HERE_CODE_LENGTH = 6
_HERE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a door, typed on a phone

HELD = "remote_held"  # outbox templates (text in the payload); notify drops them once the ticket moved on
SET_OFF = "remote_set_off"
HELD_TEXTS = (
    N_("Still coming? %(label)s"),
    N_("%(label)s at %(branch)s: you were called but are not here yet; you keep a place %(places)s back. "
       "Tap \"I'm here\" on your ticket's page when you arrive."),
)


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()


def tracking_token(secret: str, ticket: Ticket) -> str:
    """A remote ticket's tracking token, derived from the secret key, its id and issue time.

    A second join by the same proven contact gets the first ticket back, with the same link: the
    token must be found again, and the database keeps only its hash. Derived with the app's secret,
    it is as unguessable as a random one to anyone without the secret (the issue time keeps a
    reused id from ever deriving an old link)."""
    stamp = ticket.issued_at.isoformat(timespec="microseconds")
    return base64.urlsafe_b64encode(_mac(secret, f"remote-ticket:{ticket.id}:{stamp}")[:24]).decode("ascii")


def here_code(secret: str, branch_id: int, day: date) -> str:
    """The branch's "I'm here" code for one local day (the kiosk's and the door's QR): a new one
    each day, so a photo of yesterday's door does not mark anyone arrived from home."""
    digest = _mac(secret, f"here:{branch_id}:{day.isoformat()}")
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(HERE_CODE_LENGTH):
        number, index = divmod(number, len(_HERE_ALPHABET))
        chars.append(_HERE_ALPHABET[index])
    return "".join(chars)


def is_here_code(secret: str, branch_id: int, day: date, code: str) -> bool:
    return hmac.compare_digest(here_code(secret, branch_id, day), (code or "").strip().upper())


def minutes_to_turn(estimate: Estimate, now: datetime) -> int | None:
    """The earliest likely call in minutes from now (the estimate's low end; when no counter is
    open yet, counted from its opening), or None when the ticket has no estimate."""
    if estimate.state not in ("waiting", "no_counter") or estimate.low is None:
        return None
    ahead = 0
    if estimate.opens_at is not None:
        ahead = max(0, int((estimate.opens_at - now).total_seconds() // 60))
    return ahead + estimate.low


def leave_by(ticket: Ticket, estimate: Estimate, now: datetime) -> datetime | None:
    """When the holder should leave: now + the estimate's low end - the trip - the margin, never
    before now; None when there is nothing to say (arrived, no estimate, not waiting)."""
    if not ticket.remote or ticket.arrived_at is not None or ticket.status != "waiting":
        return None
    minutes = minutes_to_turn(estimate, now)
    if minutes is None:
        return None
    spare = minutes - (ticket.travel_minutes or 0) - ticket.branch.set_off_margin_minutes
    return now + timedelta(minutes=max(spare, 0))


def remote_status(ticket: Ticket, estimate: Estimate, now: datetime) -> dict | None:
    """What the tracking page shows of a remote ticket (None for a ticket taken at the branch)."""
    if not ticket.remote:
        return None
    leave = leave_by(ticket, estimate, now)
    zone = ticket.branch.zone
    return {
        "travel_minutes": ticket.travel_minutes,
        "arrived": ticket.arrived_at is not None,
        "leave_by": leave.astimezone(zone).strftime("%H:%M") if leave else None,
        "leave_now": leave is not None and leave <= now,
        "set_off_sent": ticket.set_off_sent_at is not None,
        "held": ticket.held_count > 0,
    }


def held_message(session: Session, ticket: Ticket, places: int, now: datetime) -> None:
    subject, body = HELD_TEXTS
    holder_messages.to_holder(session, ticket, HELD, f"remote_held:{ticket.id}", subject, body,
            {"label": ticket.label, "branch": ticket.branch.name, "places": places}, now)
