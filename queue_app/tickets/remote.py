"""Joining the queue from home, and coming when it is time (issue 20).

- `join`: a phone that proved its contact with a code (customers/contact_codes.py) gets a remote
  ticket, with its trip time. One active remote ticket per proven contact and branch: joining again
  gives the same ticket and the same tracking link back (remote_rules.tracking_token).
- `send_set_off`: the timed job. A remote ticket not yet arrived gets "Time to set off" once, when
  its estimate's low end falls to its trip plus the branch's margin (set_off_margin_minutes).
- `arrived`: "I'm here", by the tracking page's button or the branch's daily code (door or kiosk QR).
- Called before arriving: held back once, then a no-show (queueing.call_next).

Every function is one write transaction over a session and `now`; `secret` is the app's secret key.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.catalogue.operations import get_branch
from queue_app.core.errors import Conflict, Forbidden, Invalid
from queue_app.core.models import utcnow
from queue_app.core.security import token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import contact_codes
from queue_app.customers.identity import Contacts
from queue_app.notifications.texts import N_
from queue_app.tickets import (
    estimates,
    event_log,
    holder_messages,
    numbering,
    played_queue,
    queueing,
    remote_rules,
)
from queue_app.tickets.models import ACTIVE_STATES, Ticket

SET_OFF_TEXTS = (
    N_("Time to set off: %(label)s"),
    N_("Time to set off: about %(minutes)s min to your turn (%(label)s at %(branch)s)."),
)


@dataclass(frozen=True)
class Joined:
    ticket: Ticket
    token: str
    existing: bool  # the contact's active remote ticket, given back
    estimates: "estimates.BranchEstimates | None" = None


def require_remote(branch: Branch) -> None:
    if not branch.allow_remote_tickets:
        raise Forbidden("remote_not_allowed", "This branch does not take tickets from phones away from it.")


def check_travel(minutes: int) -> None:
    low, high = remote_rules.TRAVEL_LIMITS
    if not isinstance(minutes, int) or not low <= minutes <= high:
        raise Invalid("invalid_field", f"travel_minutes: {low} to {high}.",
                      {"travel_minutes": [f"From {low} to {high} minutes."]})


def request_code(session: Session, branch_slug: str, contacts: Contacts, *, secret: str, language: str,
                 now: datetime | None = None) -> str:
    """Send a code to the contact (through the outbox); returns the channel."""
    now = now or utcnow()
    branch = get_branch(session, branch_slug)
    require_remote(branch)
    session.commit()  # end the read before the write transaction
    return contact_codes.send_code(session, contacts, secret=secret, branch_id=branch.id, branch_name=branch.name,
                                   language=language, now=now)


def _active_for(session: Session, branch: Branch, channel: str, contact: str) -> Ticket | None:
    field = Ticket.phone if channel == "sms" else Ticket.email
    return session.scalar(
        select(Ticket).where(Ticket.branch_id == branch.id, Ticket.remote.is_(True), field == contact,
                             Ticket.status.in_(ACTIVE_STATES))
        .order_by(Ticket.id).limit(1)
    )


def join(session: Session, branch_slug: str, service: str, contacts: Contacts, code: str, travel_minutes: int, *,
         secret: str, language: str, now: datetime | None = None) -> Joined:
    """A remote ticket for the proven contact, or its active one at this branch."""

    def prove(branch: Branch) -> tuple[int | None, str, str]:
        proven = contact_codes.use_code(session, contacts, code, secret=secret, now=now or utcnow())
        customer = contact_codes.verify_contact(session, proven, language=language, now=now or utcnow())
        return customer.id, proven.channel, proven.contact

    try:
        return _issue(session, branch_slug, service, travel_minutes, prove, secret=secret, language=language,
                      now=now)
    except contact_codes.WrongCode as wrong:
        contact_codes.count_wrong_try(session, wrong, now or utcnow())  # commits the count, raises the answer
        raise


def issue_remote(session: Session, branch_slug: str, service: str, travel_minutes: int, *, phone: str, secret: str,
                 language: str = "en", now: datetime | None = None) -> Joined:
    """A remote ticket for a phone number taken as proven: for the branch simulator, whose
    customers join from home without reading a code (the page and API go through `join`)."""
    return _issue(session, branch_slug, service, travel_minutes, lambda branch: (None, "sms", phone),
                  secret=secret, language=language, now=now)


def _issue(session: Session, branch_slug: str, service: str, travel_minutes: int,
           prove: Callable[[Branch], tuple[int | None, str, str]], *, secret: str, language: str,
           now: datetime | None) -> Joined:
    """One transaction: the branch allows it, the contact is proven (`prove` gives its customer
    id, channel and contact, or raises), and the contact's active remote ticket or a new one."""
    check_travel(travel_minutes)
    live = now is None
    now = now or utcnow()
    found = None
    branch_id = None
    try:
        with write_transaction(session):
            branch = get_branch(session, branch_slug)
            branch_id = branch.id
            require_remote(branch)
            svc = queueing.find_service(session, branch, service)
            if not svc.walk_in_enabled:
                raise Conflict("walk_in_disabled", f"Service {svc.code} takes booked visits only.")
            customer_id, channel, contact = prove(branch)
            active = _active_for(session, branch, channel, contact)
            if active is not None:
                # The same ticket and link: a second join must not take a second place in line.
                return Joined(active, remote_rules.tracking_token(secret, active), existing=True)
            issued = queueing.add_ticket(session, branch, svc, priority="normal", customer_id=customer_id,
                                         kiosk_id=None, effective_at=now, now=now, live=live)
            ticket = issued.ticket
            token = remote_rules.tracking_token(secret, ticket)
            ticket.token_hash = token_hash(token)
            ticket.remote, ticket.travel_minutes, ticket.language = True, travel_minutes, language
            if channel == "sms":
                ticket.phone = contact
            else:
                ticket.email = contact
            event_log.record(session, ticket, "joined_remotely", ticket.issued_at,
                             data={"travel_minutes": travel_minutes, "channel": channel})
            session.flush()  # the played queue reads the new row's remote columns with Core
            found = played_queue.estimate_joined(session, branch, ticket, ticket.issued_at, live=live)
            if found is not None:
                queueing._keep_estimate(session, ticket, found.tickets[ticket.id])
    except BaseException:
        if found is not None and branch_id is not None:  # the kept queue played a rolled-back ticket
            played_queue.drop(session.get_bind(), branch_id)
        raise
    if found is None:
        issued = queueing.keep_estimate_at_issue(session, queueing.IssuedTicket(ticket, token), now)
        return Joined(ticket, token, existing=False, estimates=issued.estimates)
    if live:
        played_queue.refresh_if_due(session.get_bind(), branch_id)
    return Joined(ticket, token, existing=False, estimates=found)


def arrived(session: Session, ticket_id: int, *, here_code: str | None = None, secret: str = "",
            now: datetime | None = None) -> Ticket:
    """"I'm here": by the tracking page's button (no code), or with the branch's code of today
    (the QR at the door or on the kiosk; yesterday's is refused). Idempotent."""
    now = now or utcnow()
    with write_transaction(session):
        ticket = queueing._ticket_for_update(session, ticket_id)
        if not ticket.remote:
            raise Conflict("not_remote", f"{ticket.label} was taken at the branch; there is nothing to report.")
        if here_code is not None:
            today = numbering.local_day(now, ticket.branch.zone)
            if not remote_rules.is_here_code(secret, ticket.branch_id, today, here_code):
                raise Invalid("here_code_wrong", "This is not today's code of the branch; scan the code at the "
                              "branch.", {"code": ["Not today's code."]})
        if ticket.status not in ("waiting", "called"):
            raise Conflict("wrong_state", f"Ticket {ticket.label} is {ticket.status}.")
        if ticket.arrived_at is None:
            ticket.arrived_at = now
            event_log.record(session, ticket, "arrived", now, data={"by": "code" if here_code else "button"})
    return ticket


def due_set_off(session: Session, branch: Branch, now: datetime) -> list[tuple[int, int]]:
    """(ticket id, minutes to turn) of remote tickets due "Time to set off" now and not sent yet."""
    candidates = dict(session.execute(
        select(Ticket.id, Ticket.travel_minutes).where(
            Ticket.branch_id == branch.id, Ticket.status == "waiting", Ticket.remote.is_(True),
            Ticket.arrived_at.is_(None), Ticket.set_off_sent_at.is_(None))
    ).all())
    if not candidates:
        return []
    found = estimates.estimate_branch(session, branch, now, per_service=False)
    due = []
    for ticket_id, travel in candidates.items():
        estimate = found.tickets.get(ticket_id)
        minutes = remote_rules.minutes_to_turn(estimate, now) if estimate is not None else None
        if minutes is not None and minutes <= (travel or 0) + branch.set_off_margin_minutes:
            due.append((ticket_id, minutes))
    return due


def send_set_off(session: Session, *, now: datetime | None = None) -> int:
    """Tell every remote ticket whose time has come to set off, once (a conditional update claims
    each, so two schedulers send it once). Returns how many were told."""
    now = now or utcnow()
    sent = 0
    branch_ids = session.scalars(
        select(Ticket.branch_id).where(Ticket.status == "waiting", Ticket.remote.is_(True),
                                       Ticket.arrived_at.is_(None), Ticket.set_off_sent_at.is_(None)).distinct()
    ).all()
    for branch_id in branch_ids:
        branch = session.get(Branch, branch_id)
        today = numbering.local_day(now, branch.zone)
        due = due_set_off(session, branch, now)
        session.commit()  # end the read before the write
        if not due:
            continue
        with write_transaction(session):
            for ticket_id, minutes in due:
                ticket = holder_messages.claim_once(session, ticket_id, Ticket.set_off_sent_at, today, now,
                                                    Ticket.arrived_at.is_(None))
                if ticket is None:
                    continue  # called, arrived or told meanwhile
                event_log.record(session, ticket, "set_off", now, data={"minutes": minutes})
                subject, body = SET_OFF_TEXTS
                holder_messages.to_holder(session, ticket, remote_rules.SET_OFF, f"remote_set_off:{ticket.id}",
                                          subject, body, {"label": ticket.label, "branch": ticket.branch.name,
                                                          "minutes": max(minutes, 1)}, now)
                sent += 1
    return sent

