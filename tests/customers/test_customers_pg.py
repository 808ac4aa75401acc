"""Customer records on PostgreSQL: recompute and churn (insert-once), feedback once, merge, erasure."""
from datetime import timedelta

import pytest
from helpers import NOW
from sqlalchemy import func, select

from queue_app.accounts.models import Staff
from queue_app.audit.models import AuditEntry
from queue_app.core.errors import Conflict
from queue_app.customers import feedback as customer_feedback
from queue_app.customers import privacy as customer_privacy
from queue_app.customers import standing as customer_standing
from queue_app.customers.models import ChurnAlert, Customer, CustomerStanding, Feedback
from queue_app.demo.customers import seed_customer_history
from queue_app.tickets.models import Ticket


@pytest.mark.own_postgres  # on PostgreSQL whatever the pass: run once
def test_customer_records_on_postgres(pg_session):
    session = pg_session
    seed_customer_history(session, "demo", now=NOW)
    assert session.scalar(select(func.count()).select_from(CustomerStanding)) == 12
    alerts = session.scalar(select(func.count(ChurnAlert.id)))
    assert alerts >= 1
    again = customer_standing.recompute_branch(session, "demo", now=NOW)
    assert (again["changed"], again["new_alerts"]) == (0, 0)
    ticket = session.scalar(select(Ticket).outerjoin(Feedback, Feedback.ticket_id == Ticket.id)
                            .where(Ticket.status == "done", Feedback.id.is_(None)).order_by(Ticket.id.desc()).limit(1))
    customer_feedback.submit_feedback(session, ticket.id, 5, 10, now=ticket.finished_at)
    with pytest.raises(Conflict):
        customer_feedback.submit_feedback(session, ticket.id, 1, 0, now=ticket.finished_at)
    manager = session.scalar(select(Staff).where(Staff.email == "manager@demo.test"))
    ids = session.scalars(select(Customer.id).order_by(Customer.id).limit(2)).all()
    visits = session.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id.in_(ids)))
    customer_privacy.merge(session, ids[0], ids[1], manager, now=NOW)
    assert session.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id == ids[0])) == visits
    customer_privacy.erase(session, ids[0], manager, now=NOW + timedelta(days=1))
    assert session.get(Customer, ids[0]) is None
    assert session.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id.is_(None))) >= visits
    assert session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "customer.erased")) == 1
