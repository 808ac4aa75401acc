"""Data retention: personal data on old visits is removed, the visits themselves stay for statistics.

Tickets, bookings and their events are kept (waits, service times and no-show rates need them);
what identifies a person is cleared once every visit of theirs is older than the retention
period: the booking's name and the contacts typed on bookings and tickets, the link from tickets, bookings and feedback answers to the
customer (and the answers' comments), the addresses in sent messages, and finally the customer's
own phone, e-mail and name (and the churn alerts of such anonymous records). Idempotent.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers.models import ChurnAlert, ContactCode, Customer, Feedback
from queue_app.notifications.models import Notification
from queue_app.tickets.models import Ticket


@dataclass(frozen=True)
class Purged:
    appointments: int
    tickets: int
    notifications: int
    customers: int


CODES_KEPT = timedelta(days=1)


def purge_personal_data(session: Session, keep: timedelta, *, now: datetime | None = None) -> Purged:
    cutoff = (now or utcnow()) - keep
    with write_transaction(session):
        appointments = session.execute(
            update(Appointment)
            .where(Appointment.start_at < cutoff, Appointment.status.not_in(("booked", "checked_in")),
                   (Appointment.name != "") | Appointment.customer_id.is_not(None)
                   | Appointment.phone.is_not(None) | Appointment.email.is_not(None))
            # the contacts typed on it too (identity.py); the fingerprint is a hash of name and contacts
            .values(name="", customer_id=None, phone=None, email=None, idempotency_fingerprint=None)
        ).rowcount
        tickets = session.execute(
            update(Ticket)
            .where(Ticket.issued_at < cutoff, Ticket.status.not_in(("waiting", "called", "serving")),
                   Ticket.customer_id.is_not(None) | Ticket.phone.is_not(None) | Ticket.email.is_not(None))
            .values(customer_id=None, phone=None, email=None)
        ).rowcount
        # A message still unsent after the whole retention period will never be useful.
        session.execute(
            update(Notification)
            .where(Notification.created_at < cutoff, Notification.status.in_(("pending", "sending")))
            .values(status="cancelled")
        )
        notifications = session.execute(
            update(Notification)
            .where(Notification.created_at < cutoff, Notification.recipient != "")
            .values(recipient="", payload={})
        ).rowcount
        # Answers to old visits keep their ratings (statistics) but lose the person and the free text.
        session.execute(
            update(Feedback)
            .where(Feedback.ticket_id.in_(select(Ticket.id).where(Ticket.issued_at < cutoff)),
                   Feedback.customer_id.is_not(None) | (Feedback.comment != "") | Feedback.token_hash.is_not(None))
            .values(customer_id=None, comment="", token_hash=None)
            .execution_options(synchronize_session=False)
        )
        # A customer with no visit left inside the period has nothing that needs their identity.
        recent_ticket = exists().where(Ticket.customer_id == Customer.id)
        recent_booking = exists().where(Appointment.customer_id == Customer.id)
        customers = session.execute(
            update(Customer)
            .where(~recent_ticket, ~recent_booking,
                   Customer.phone.is_not(None) | Customer.email.is_not(None) | (Customer.name != ""))
            .values(phone=None, email=None, name="")
            .execution_options(synchronize_session=False)
        ).rowcount
        # Codes to join from home are void after minutes (contact_codes.py); a day is kept for abuse reports.
        session.execute(delete(ContactCode).where(ContactCode.created_at < max(cutoff, (now or utcnow()) - CODES_KEPT)))
        # Nobody can contact an anonymous record: its churn alerts go.
        session.execute(delete(ChurnAlert).where(ChurnAlert.customer_id.in_(
            select(Customer.id).where(Customer.phone.is_(None), Customer.email.is_(None), Customer.name == ""))))
    return Purged(appointments, tickets, notifications, customers)

