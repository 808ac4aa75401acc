"""Read models of a branch's queue: what displays, staff consoles and the API show."""
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.domain import numbering
from queue_app.models import Branch, Counter, Service, Ticket, utcnow


def queue_summary(session: Session, branch: Branch, now: datetime | None = None) -> dict:
    """Waiting per service and now serving per counter, for the branch's current local day.

    Numbers and counters only: no names or contact data, so displays can show it all.
    """
    today = numbering.local_day(now or utcnow(), branch.zone)
    waiting_counts = dict(
        session.execute(
            select(Ticket.service_id, func.count(Ticket.id))
            .where(Ticket.branch_id == branch.id, Ticket.local_date == today, Ticket.status == "waiting")
            .group_by(Ticket.service_id)
        ).all()
    )
    services = session.scalars(
        select(Service).where(Service.branch_id == branch.id, Service.active.is_(True)).order_by(Service.code)
    ).all()
    counters = session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.name)).all()
    current = {
        t.counter_id: t
        for t in session.scalars(
            select(Ticket).where(Ticket.branch_id == branch.id, Ticket.status.in_(("called", "serving")))
        )
    }
    return {
        "branch": branch.slug,
        "local_date": today.isoformat(),
        "waiting": [
            {"service": s.code, "name": s.name, "count": waiting_counts.get(s.id, 0)} for s in services
        ],
        "counters": [
            {
                "id": c.id,
                "name": c.name,
                "state": c.state,
                "ticket": (
                    {"id": current[c.id].id, "label": current[c.id].label, "status": current[c.id].status}
                    if c.id in current else None
                ),
            }
            for c in counters
        ],
    }
