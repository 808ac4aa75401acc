"""Customer records: finding or creating one from a contact, its history, search and attaching a
record to a ticket at the counter. Rules, standings and churn: standing.py; who may see what:
access.py; feedback: feedback.py; merge, export and erasure: privacy.py.

Identity. One customer per phone number, normalised to E.164 with the branch's country as the
default region (`phonenumbers`), and/or per e-mail address (lower-cased). "0912 345 678" typed at
a Taiwanese branch, "+886912345678" and "+886 912-345-678" are the same person. Two records of one
person are merged by a manager (`merge`): every ticket, booking, answer and alert moves over.
"""
import re
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Service
from queue_app.core.errors import Forbidden, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers import identity
from queue_app.customers.access import _known_at, get_customer, require_branch, visible_branches
from queue_app.customers.identity import normalise_email, normalise_phone
from queue_app.customers.models import (
    Customer,
    CustomerStanding,
    Feedback,
)
from queue_app.tickets.models import Ticket

# --- identity ------------------------------------------------------------------------------------

def find_or_create(session: Session, phone: str | None = None, email: str | None = None, *,
                   region: str | None = None, name: str = "", now: datetime | None = None,
                   language: str = "en") -> Customer | None:
    """Staff at the counter: the customer with this phone (first) or e-mail, created if new, with
    gaps filled from what staff typed; inside the caller's transaction. Customers' own typed
    contacts go through identity.link instead, which never changes a record.

    A phone and an e-mail that belong to two different records are not merged here (anyone can
    type anything into a booking form): the phone's record is used, and a manager merges.
    """
    phone = normalise_phone(phone, region) if phone else None
    email = normalise_email(email) if email else None
    if not phone and not email:
        return None
    by_phone = session.scalar(select(Customer).where(Customer.phone == phone)) if phone else None
    by_email = session.scalar(select(Customer).where(Customer.email == email)) if email else None
    customer = by_phone or by_email
    if customer is None:
        customer = Customer(phone=phone, email=email, name=(name or "")[:200], language=language, tier="standard",
                            strikes=0, created_at=now or utcnow())
        session.add(customer)
        session.flush()
        return customer
    if phone and customer.phone is None:
        customer.phone = phone
    if email and customer.email is None and by_email is None:
        customer.email = email
    if name and not customer.name:
        customer.name = name[:200]
    return customer




def mask_phone(phone: str | None) -> str | None:
    return None if not phone else "•" * max(0, len(phone) - 3) + phone[-3:]


def contact_view(customer: Customer, staff: Staff) -> dict:
    """The one rule for showing a record's contacts: managers and admins in full, staff a masked
    phone and no e-mail; with whether each was proven by the customer (identity.py)."""
    full = staff.has_role("manager")
    return {"phone": customer.phone if full else mask_phone(customer.phone),
            "email": customer.email if full else None, "verified": identity.verified(customer)}


# --- history -------------------------------------------------------------------------------------

def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds() / 60), 1)


def history(session: Session, customer_id: int, branch_ids: list[int] | None = None, *,
            limit: int | None = None, exclude_ticket: int | None = None) -> list[dict]:
    """Every booking, check-in, ticket (with wait and service time), no-show, cancellation and
    rating, newest first. `branch_ids` limits it to those branches (None: all)."""
    ticket_q = select(Ticket).where(Ticket.customer_id == customer_id)
    if exclude_ticket is not None:
        ticket_q = ticket_q.where(Ticket.id != exclude_ticket)
    booking_q = select(Appointment).where(Appointment.customer_id == customer_id)
    feedback_q = select(Feedback).where(Feedback.customer_id == customer_id, Feedback.answered_at.is_not(None))
    if branch_ids is not None:
        ticket_q = ticket_q.where(Ticket.branch_id.in_(branch_ids))
        booking_q = booking_q.where(Appointment.branch_id.in_(branch_ids))
        feedback_q = feedback_q.where(Feedback.branch_id.in_(branch_ids))
    entries = []
    for ticket in session.scalars(ticket_q):
        waited_from = max(ticket.issued_at, ticket.effective_at)
        entries.append({
            "at": ticket.issued_at, "kind": "ticket", "branch": ticket.branch.slug, "branch_name": ticket.branch.name,
            "service": ticket.service.code, "service_name": ticket.service.name,
            "service_names": dict(ticket.service.names or {}), "label": ticket.label,
            "status": ticket.status, "counter": ticket.counter.name if ticket.counter else None,
            "wait_minutes": _minutes(waited_from, ticket.called_at),
            "service_minutes": _minutes(ticket.started_at or ticket.called_at, ticket.finished_at)
            if ticket.status == "done" else None,
            "zone": ticket.branch.timezone,
        })
    for appointment in session.scalars(booking_q):
        entries.append({
            "at": appointment.created_at, "kind": "booking", "branch": appointment.branch.slug,
            "branch_name": appointment.branch.name, "service": appointment.service.code,
            "service_name": appointment.service.name, "service_names": dict(appointment.service.names or {}),
            "status": appointment.status,
            "start": appointment.start_at, "zone": appointment.branch.timezone,
        })
        if appointment.cancelled_at:
            entries.append({"at": appointment.cancelled_at, "kind": "cancellation", "branch": appointment.branch.slug,
                            "branch_name": appointment.branch.name, "service": appointment.service.code,
                            "service_name": appointment.service.name,
                            "service_names": dict(appointment.service.names or {}), "status": "cancelled",
                            "start": appointment.start_at, "zone": appointment.branch.timezone})
    for answer in session.scalars(feedback_q):
        branch = session.get(Branch, answer.branch_id)
        service = session.get(Service, answer.service_id)
        entries.append({"at": answer.answered_at, "kind": "rating", "branch": branch.slug, "branch_name": branch.name,
                        "service": service.code, "service_name": service.name,
                        "service_names": dict(service.names or {}), "rating": answer.rating,
                        "nps": answer.nps, "comment": answer.comment, "zone": branch.timezone})
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit] if limit else entries


def summary(session: Session, customer: Customer, branch_ids: list[int] | None) -> dict:
    """Record card: identity, standings at the visible branches, counts."""
    query = select(CustomerStanding).where(CustomerStanding.customer_id == customer.id)
    if branch_ids is not None:
        query = query.where(CustomerStanding.branch_id.in_(branch_ids))
    return {"customer": customer, "standings": session.scalars(query).all()}


def record_view(session: Session, customer_id: int, staff: Staff, what: str = "record") -> None:
    """Reading a record is audited (its own small transaction)."""
    with write_transaction(session):
        audit.record(session, "customer.viewed", "customer", customer_id, actor_id=staff.id, details={"what": what})


# --- search and attach ---------------------------------------------------------------------------

def search(session: Session, staff: Staff, text: str, branch: Branch, *, limit: int = 20) -> list[dict]:
    """By phone (any format, exact or by its last digits) or name; staff see masked phone numbers."""
    text = (text or "").strip()
    if len(text) < 2:
        return []
    digits = re.sub(r"\D", "", text)
    conditions = []
    if len(digits) >= 4 and len(digits) >= len(text.replace(" ", "")) - 3:
        try:
            conditions.append(Customer.phone == normalise_phone(text, branch.country))
        except Invalid:
            pass
        conditions.append(Customer.phone.like(f"%{digits}"))
    elif "@" in text:
        conditions.append(Customer.email == text.lower())
    else:
        pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        conditions.append(func.lower(Customer.name).like(pattern))
    query = select(Customer).where(or_(*conditions)).order_by(Customer.name, Customer.id).limit(limit)
    if staff.role != "admin":
        # The access policy: only customers this branch knows, even for an exact phone. Staff get a
        # card to attach at the counter (masked phone, no e-mail), not the record (today's only).
        ticket_known = select(Ticket.id).where(Ticket.customer_id == Customer.id, Ticket.branch_id == branch.id)
        booking_known = select(Appointment.id).where(Appointment.customer_id == Customer.id,
                                                     Appointment.branch_id == branch.id)
        query = query.where(or_(ticket_known.exists(), booking_known.exists()))
    full = staff.has_role("manager")
    return [{"id": c.id, "name": c.name, "phone": c.phone if full else mask_phone(c.phone),
             "email": c.email if full else None, "tier": c.tier, "verified": identity.verified(c),
             "last_visit_at": c.last_visit_at} for c in session.scalars(query)]


def attach_to_ticket(session: Session, ticket_id: int, staff: Staff, *, customer_id: int | None = None,
                     phone: str | None = None, email: str | None = None, name: str = "",
                     now: datetime | None = None) -> Customer:
    """Staff at the counter put a ticket on a customer's record (found by search, or by contact)."""
    now = now or utcnow()
    with write_transaction(session):
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
        require_branch(staff, ticket.branch, "staff")
        if customer_id is not None:
            # By id only a customer this branch knows (as its search finds them): ids are not a
            # way to reach another branch's customers.
            customer = get_customer(session, customer_id)
            if staff.role != "admin" and not _known_at(session, customer_id, [ticket.branch_id], False, now):
                raise Forbidden("other_branch", "This customer is not known at this branch; "
                                                "attach by the phone or e-mail they give.")
        else:
            if not phone and not email:
                raise Invalid("contact_required", "Give a customer, a phone number or an e-mail address.",
                              {"phone": ["A phone number or an e-mail address is needed."]})
            customer = find_or_create(session, phone=phone, email=email, region=ticket.branch.country, name=name,
                                      now=now)
        if name and not customer.name:
            customer.name = name[:200]
        previous = ticket.customer_id
        ticket.customer_id = customer.id
        # Staff vouch for the person at the counter: the ticket's messages go to these contacts.
        ticket.phone = customer.phone if customer_id is not None else (customer.phone if phone else None)
        ticket.email = customer.email if customer_id is not None else (customer.email if email else None)
        ticket.language = ticket.language or customer.language
        if ticket.status == "done":
            customer.last_visit_at = max(filter(None, [customer.last_visit_at, ticket.finished_at]))
        audit.record(session, "customer.attached", "customer", customer.id, actor_id=staff.id,
                     branch_id=ticket.branch_id, details={"ticket": ticket.id, "previous": previous}, now=now)
    return customer


def ticket_customer(session: Session, ticket_id: int, staff: Staff, *, recent: int = 5) -> dict:
    """For the counter: the current ticket's customer with their earlier visits at these branches."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
    require_branch(staff, ticket.branch, "staff")
    if ticket.customer_id is None:
        return {"customer": None, "standing": None, "recent": []}
    branch_ids = visible_branches(session, staff, ticket.customer_id)
    customer = session.get(Customer, ticket.customer_id)
    standing = session.get(CustomerStanding, (customer.id, ticket.branch_id))
    return {"customer": customer, "standing": standing,
            "recent": history(session, customer.id, branch_ids, limit=recent, exclude_ticket=ticket.id)}


