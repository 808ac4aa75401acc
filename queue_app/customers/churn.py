"""The churn list managers work through: valued customers drifting away, and who contacted them."""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.catalogue.models import Branch
from queue_app.core.errors import NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers.access import require_branch
from queue_app.customers.models import (
    ChurnAlert,
)


def churn_list(session: Session, branch: Branch, *, include_contacted: bool = True) -> list[ChurnAlert]:
    query = select(ChurnAlert).where(ChurnAlert.branch_id == branch.id, ChurnAlert.resolved_at.is_(None))
    if not include_contacted:
        query = query.where(ChurnAlert.contacted_at.is_(None))
    return session.scalars(query.order_by(ChurnAlert.contacted_at.is_not(None), ChurnAlert.last_visit_at)).all()


def mark_contacted(session: Session, alert_id: int, staff: Staff, *, now: datetime | None = None) -> ChurnAlert:
    now = now or utcnow()
    with write_transaction(session):
        alert = session.get(ChurnAlert, alert_id)
        if alert is None:
            raise NotFound("alert_not_found", f"No churn alert {alert_id}.")
        require_branch(staff, session.get(Branch, alert.branch_id))
        if alert.contacted_at is None:
            alert.contacted_at = now
            alert.contacted_by_id = staff.id
            audit.record(session, "churn.contacted", "customer", alert.customer_id, actor_id=staff.id,
                         branch_id=alert.branch_id, details={"alert": alert.id}, now=now)
    return alert
