"""Who may see or change a customer record: the one access rule for pages, the API and the counter.

Access. `visible_branches` is the one rule for pages and API: admins see every customer;
managers see customers known at their branches (their history there); staff see today's customers
of their branches (their history there). Everything else is Forbidden.
"""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch
from queue_app.core.errors import Forbidden, NotFound
from queue_app.core.models import utcnow
from queue_app.customers.models import Customer
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer_not_found", f"No customer {customer_id}.")
    return customer


def _known_at(session: Session, customer_id: int, branch_ids: list[int] | None, day_only: bool,
              now: datetime) -> set[int]:
    """Branches (of `branch_ids`, None = any) where the customer has a ticket or booking (today only)."""
    found: set[int] = set()
    ticket_q = select(Ticket.branch_id, Ticket.local_date).where(Ticket.customer_id == customer_id)
    booking_q = select(Appointment.branch_id, Appointment.local_date).where(Appointment.customer_id == customer_id)
    if branch_ids is not None:
        ticket_q = ticket_q.where(Ticket.branch_id.in_(branch_ids))
        booking_q = booking_q.where(Appointment.branch_id.in_(branch_ids))
    rows = session.execute(ticket_q.distinct()).all() + session.execute(booking_q.distinct()).all()
    if not day_only:
        return {branch_id for branch_id, _day in rows}
    zones = {b.id: b.zone for b in session.scalars(select(Branch).where(Branch.id.in_({r[0] for r in rows})))}
    for branch_id, day in rows:
        if day == numbering.local_day(now, zones[branch_id]):
            found.add(branch_id)
    return found


def visible_branches(session: Session, staff: Staff, customer_id: int, *, now: datetime | None = None) -> list[int] | None:
    """Branch ids whose history of this customer `staff` may see (None: all); Forbidden if none."""
    get_customer(session, customer_id)
    if staff.role == "admin":
        return None
    own = [b.id for b in staff.branches]
    if staff.has_role("manager"):
        visible = _known_at(session, customer_id, own, False, now or utcnow())
        if not visible:
            raise Forbidden("other_branch", "This customer has no visits at your branches.")
    else:
        visible = _known_at(session, customer_id, own, True, now or utcnow())
        if not visible:
            raise Forbidden("not_today", "Staff see the records of today's customers at their branches.")
    return sorted(visible)


def require_manager_of(session: Session, staff: Staff, customer_id: int) -> list[int] | None:
    """Export, unblock: managers of a branch that knows the customer, and admins."""
    if not staff.has_role("manager"):
        raise Forbidden("role_required", "This needs the manager role.")
    return visible_branches(session, staff, customer_id)


def require_whole_record(session: Session, staff: Staff, customer_id: int) -> None:
    """Erase and merge act on the person everywhere: admins, or a manager of every branch that
    knows the customer (a visit elsewhere is another branch's record to keep)."""
    require_manager_of(session, staff, customer_id)
    if staff.role == "admin":
        return
    everywhere = _known_at(session, customer_id, None, False, utcnow())
    if not everywhere <= {b.id for b in staff.branches}:
        raise Forbidden("other_branch", "This customer is also known at other branches; an admin can do this.")


def require_branch(staff: Staff, branch: Branch, role: str = "manager") -> None:
    if not staff.has_role(role):
        raise Forbidden("role_required", f"This needs the {role} role.")
    if not staff.can_access_branch(branch.id):
        raise Forbidden("other_branch", "You are not staff of this branch.")
