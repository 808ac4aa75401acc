"""A customer's data rights and record keeping: merge two records, export everything, erase.

Privacy. Erasure deletes the person (name, phone, e-mail, comments, alerts, standings, message
recipients and texts) and keeps tickets, waits, bookings and ratings as anonymous rows, so the
branch's statistics do not change. Views, exports, merges and erasures are written to the audit
log without personal data.
"""
from datetime import datetime

from sqlalchemy import delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch
from queue_app.core.errors import Invalid
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers.access import get_customer, require_manager_of, require_whole_record
from queue_app.customers.models import (
    ChurnAlert,
    ContactCode,
    ContactProof,
    Customer,
    CustomerStanding,
    Feedback,
)
from queue_app.customers.operations import history
from queue_app.notifications.models import Notification
from queue_app.tickets.models import Ticket


def merge(session: Session, keep_id: int, other_id: int, staff: Staff, *, now: datetime | None = None) -> Customer:
    """Fold `other` into `keep`: every ticket, booking, answer and alert moves; contacts fill gaps."""
    if keep_id == other_id:
        raise Invalid("same_customer", "A record cannot be merged into itself.")
    require_whole_record(session, staff, keep_id)
    require_whole_record(session, staff, other_id)
    now = now or utcnow()
    with write_transaction(session):
        keep, other = get_customer(session, keep_id), get_customer(session, other_id)
        for model in (Ticket, Appointment, Feedback):
            session.execute(update(model).where(model.customer_id == other.id).values(customer_id=keep.id)
                            .execution_options(synchronize_session=False))
        # Alerts and standings are recomputed from the merged history on the next run.
        session.execute(delete(ChurnAlert).where(ChurnAlert.customer_id == other.id))
        session.execute(delete(CustomerStanding).where(CustomerStanding.customer_id == other.id))
        phone, email, name = other.phone, other.email, other.name
        keep.strikes += other.strikes
        keep.last_visit_at = max(filter(None, [keep.last_visit_at, other.last_visit_at]), default=None)
        keep.created_at = min(filter(None, [keep.created_at, other.created_at]), default=None)
        if other.booking_blocked_until and (keep.booking_blocked_until is None
                                            or other.booking_blocked_until > keep.booking_blocked_until):
            keep.booking_blocked_until = other.booking_blocked_until
        session.delete(other)
        session.flush()  # the unique phone and e-mail are free now
        keep.phone = keep.phone or phone
        keep.email = keep.email or email
        keep.name = keep.name or name
        audit.record(session, "customer.merged", "customer", keep.id, actor_id=staff.id,
                     details={"merged": other_id}, now=now)
    return keep


def _iso(moment):
    return moment.isoformat() if isinstance(moment, datetime) else moment


def export(session: Session, customer_id: int, staff: Staff, *, now: datetime | None = None) -> dict:
    """Everything stored about the person (JSON-ready); audited. A manager gets the visits at
    their own branches (another branch's visits are that branch's to disclose); an admin, all."""
    visible = require_manager_of(session, staff, customer_id)
    customer = get_customer(session, customer_id)
    standings = select(CustomerStanding).where(CustomerStanding.customer_id == customer_id)
    bookings = select(Appointment).where(Appointment.customer_id == customer_id)
    if visible is not None:
        standings = standings.where(CustomerStanding.branch_id.in_(visible))
        bookings = bookings.where(Appointment.branch_id.in_(visible))
    data = {
        "customer": {"id": customer.id, "name": customer.name, "phone": customer.phone, "email": customer.email,
                     "language": customer.language, "tier": customer.tier, "strikes": customer.strikes,
                     "last_visit_at": _iso(customer.last_visit_at), "created_at": _iso(customer.created_at),
                     "booking_blocked_until": _iso(customer.booking_blocked_until)},
        "standings": [{"branch": session.get(Branch, s.branch_id).slug, "segment": s.segment, "tier": s.tier,
                       "visits": s.visits, "spend_cents": s.spend_cents, "no_shows": s.no_shows,
                       "value_score": s.value_score, "loyalty_score": s.loyalty_score,
                       "usual_interval_days": s.usual_interval_days,
                       "first_visit_at": _iso(s.first_visit_at), "last_visit_at": _iso(s.last_visit_at)}
                      for s in session.scalars(standings)],
        "history": [{k: _iso(v) for k, v in entry.items()} for entry in history(session, customer_id, visible)],
        "bookings": [{"branch": a.branch.slug, "service": a.service.code, "name": a.name, "start": _iso(a.start_at),
                      "status": a.status, "language": a.language, "created_at": _iso(a.created_at)}
                     for a in session.scalars(bookings)],
        "branches": None if visible is None else sorted(session.get(Branch, b).slug for b in visible),
        "exported_at": _iso(now or utcnow()),
    }
    with write_transaction(session):
        audit.record(session, "customer.exported", "customer", customer_id, actor_id=staff.id, now=now)
    return data


def erase(session: Session, customer_id: int, staff: Staff, *, now: datetime | None = None) -> dict:
    """Remove the person; keep anonymous tickets, waits, bookings and ratings. Audited."""
    require_whole_record(session, staff, customer_id)
    now = now or utcnow()
    with write_transaction(session):
        customer = get_customer(session, customer_id)
        booking_ids = select(Appointment.id).where(Appointment.customer_id == customer_id)
        # Every contact of the person: the record's and those typed on their bookings and tickets.
        typed = session.execute(select(Appointment.phone, Appointment.email)
                                .where(Appointment.customer_id == customer_id)).all() + \
            session.execute(select(Ticket.phone, Ticket.email).where(Ticket.customer_id == customer_id)).all()
        contacts = sorted({c for c in (customer.phone, customer.email, *(v for row in typed for v in row)) if c})
        feedback_ids = select(Feedback.id).where(Feedback.customer_id == customer_id)
        # Messages to the person: unsent ones are dropped, every one loses recipient and text.
        feedback_keys = [f"feedback:{ticket_id}" for ticket_id in session.scalars(
            select(Feedback.ticket_id).where(Feedback.customer_id == customer_id))]
        about_them = or_(Notification.appointment_id.in_(booking_ids),
                         Notification.recipient.in_(contacts) if contacts else false(),
                         Notification.dedupe_key.in_(feedback_keys) if feedback_keys else false())
        session.execute(update(Notification).where(about_them, Notification.status.in_(("pending", "sending")))
                        .values(status="cancelled", last_error="recipient erased")
                        .execution_options(synchronize_session=False))
        messages = session.execute(update(Notification).where(about_them)
                                   .values(recipient="", payload={}, last_error="")
                                   .execution_options(synchronize_session=False)).rowcount
        session.execute(update(ContactProof).where(ContactProof.appointment_id.in_(booking_ids))
                        .values(contact="", used_at=func.coalesce(ContactProof.used_at, now))
                        .execution_options(synchronize_session=False))
        if contacts:  # codes sent to join from home (contact_codes.py)
            session.execute(delete(ContactCode).where(ContactCode.contact.in_(contacts)))
        session.execute(update(Appointment).where(Appointment.customer_id == customer_id)
                        .values(name="", phone=None, email=None, customer_id=None, idempotency_token=None,
                                idempotency_fingerprint=None)
                        .execution_options(synchronize_session=False))
        tickets = session.execute(update(Ticket).where(Ticket.customer_id == customer_id)
                                  .values(customer_id=None, phone=None, email=None)
                                  .execution_options(synchronize_session=False)).rowcount
        session.execute(update(Feedback).where(Feedback.id.in_(feedback_ids)).values(customer_id=None, comment="")
                        .execution_options(synchronize_session=False))
        session.execute(delete(ChurnAlert).where(ChurnAlert.customer_id == customer_id))
        session.execute(delete(CustomerStanding).where(CustomerStanding.customer_id == customer_id))
        session.delete(customer)
        audit.record(session, "customer.erased", "customer", customer_id, actor_id=staff.id,
                     details={"tickets_kept": tickets, "messages_cleared": messages}, now=now)
    return {"customer": customer_id, "tickets_kept": tickets, "messages_cleared": messages}
