""""Almost your turn": tell a waiting customer once, when the call is near.

A waiting ticket is due an alert when its estimate falls to the branch's `almost_turn_minutes`
or the people ahead of it to `almost_turn_position`. The alert is recorded on the ticket with a
conditional update (`almost_turn_at IS NULL`), so it is sent once even if two schedulers run;
the same transaction records an `almost_turn` event (the phone page gets the push, with sound and
vibration where the browser allows) and, where the customer left an e-mail or phone number, puts
a message in the outbox.
"""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.notifications import notify
from queue_app.notifications.texts import N_
from queue_app.tickets import estimates, event_log, holder_messages, numbering
from queue_app.tickets.models import Ticket

# Subject, body, and the body when the estimate is zero; in English, translated into the
# customer's language from the shared catalogs when the message is written (notifications/texts.py).
TEXTS = (
    N_("Almost your turn: %(label)s"),
    N_("%(label)s at %(branch)s: about %(minutes)s min to your turn. Please come to the waiting area."),
    N_("%(label)s at %(branch)s: you are about to be called. Please come to the waiting area."),
)


def due_tickets(session: Session, branch: Branch, now: datetime) -> list[tuple[int, estimates.Estimate]]:
    """Waiting tickets whose alert is due now and not yet sent."""
    found = estimates.estimate_branch(session, branch, now, per_service=False)
    due = []
    for ticket_id, estimate in found.tickets.items():
        near = estimate.state == "waiting" and estimate.minutes <= branch.almost_turn_minutes
        if near or found.ahead.get(ticket_id, 0) < branch.almost_turn_position:
            due.append((ticket_id, estimate))
    if not due:
        return []
    unsent = set(session.scalars(
        select(Ticket.id).where(Ticket.id.in_([t for t, _ in due]), Ticket.almost_turn_at.is_(None))
    ))
    return [(ticket_id, estimate) for ticket_id, estimate in due if ticket_id in unsent]


def _message(session: Session, ticket: Ticket, estimate: estimates.Estimate, now: datetime) -> None:
    subject, body, now_body = TEXTS
    if not estimate.minutes:
        body = now_body  # "about 0 min" reads like a bug
    holder_messages.to_holder(session, ticket, notify.ALMOST_TURN, f"almost_turn:{ticket.id}", subject, body,
                              {"label": ticket.label, "branch": ticket.branch.name, "minutes": estimate.minutes},
                              now)


def send_almost_turn(session: Session, *, now: datetime | None = None) -> int:
    """Alert every waiting ticket that is near its turn, once. Returns how many were alerted."""
    now = now or utcnow()
    sent = 0
    branch_ids = session.scalars(
        select(Ticket.branch_id).where(Ticket.status == "waiting", Ticket.almost_turn_at.is_(None)).distinct()
    ).all()
    for branch_id in branch_ids:
        branch = session.get(Branch, branch_id)
        today = numbering.local_day(now, branch.zone)
        due = due_tickets(session, branch, now)
        if not due:
            continue
        with write_transaction(session):
            for ticket_id, estimate in due:
                ticket = holder_messages.claim_once(session, ticket_id, Ticket.almost_turn_at, today, now)
                if ticket is None:
                    continue  # called meanwhile, or another scheduler sent it
                event_log.record(session, ticket, "almost_turn", now, data={"minutes": estimate.minutes})
                _message(session, ticket, estimate, now)
                sent += 1
    return sent
