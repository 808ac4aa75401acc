"""Read models of a branch's queue: what displays, staff consoles and the API show."""
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.domain import numbering, queueing
from queue_app.domain.estimates import estimate_wait, open_counters_for
from queue_app.models import Branch, Counter, Service, Ticket, TicketEvent, utcnow


def _status(session: Session, ticket: Ticket, ahead: int, open_counters: int | None = None) -> dict:
    return {
        "label": ticket.label,
        "status": ticket.status,
        "service": ticket.service.code,
        "service_name": ticket.service.name,
        "position": ahead + 1 if ticket.status == "waiting" else 0,
        "ahead": ahead,
        "estimate": estimate_wait(session, ticket, ahead, open_counters).as_dict(),
        "counter": ticket.counter.name if ticket.counter and ticket.status in ("called", "serving") else None,
        "postponed": ticket.postponed,
        "issued_at": ticket.issued_at.astimezone(ticket.branch.zone).isoformat(timespec="seconds"),
    }


def ticket_status(session: Session, ticket: Ticket) -> dict:
    """What the holder of a ticket sees: numbers and counters, no personal data."""
    return _status(session, ticket, queueing.people_ahead(session, ticket))


def waiting_statuses(
    session: Session, branch: Branch, service_ids: set[int], only: set[int] | None = None,
    now: datetime | None = None,
) -> dict[int, dict]:
    """ticket_status of the waiting tickets of some services today (for pushes).

    Positions come from one id query per service; full statuses are built only for the tickets
    in `only` (those someone is watching), or for all when `only` is None.
    """
    today = numbering.local_day(now or utcnow(), branch.zone)
    statuses = {}
    for service_id in service_ids:
        order = session.scalars(
            select(Ticket.id)
            .where(Ticket.branch_id == branch.id, Ticket.service_id == service_id,
                   Ticket.local_date == today, Ticket.status == "waiting")
            .order_by(Ticket.sort_key, Ticket.id)
        ).all()
        ahead_of = {ticket_id: ahead for ahead, ticket_id in enumerate(order)}
        wanted = list(ahead_of) if only is None else [i for i in only if i in ahead_of]
        if not wanted:
            continue
        counters = open_counters_for(session, service_id)  # once per service, not per ticket
        for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(wanted))):
            statuses[ticket.id] = _status(session, ticket, ahead_of[ticket.id], counters)
    return statuses


def recent_calls(session: Session, branch: Branch, limit: int = 6, now: datetime | None = None) -> list[dict]:
    """The last tickets called (or recalled) today, newest first: label, counter, time."""
    today = numbering.local_day(now or utcnow(), branch.zone)
    rows = session.execute(
        select(TicketEvent.type, TicketEvent.at, Ticket.label, Counter.name, Service.code)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .join(Counter, Counter.id == TicketEvent.counter_id)
        .join(Service, Service.id == Ticket.service_id)
        .where(TicketEvent.branch_id == branch.id, TicketEvent.type.in_(("called", "recalled")),
               Ticket.local_date == today)
        .order_by(TicketEvent.id.desc())
        .limit(limit)
    ).all()
    return [
        {"label": label, "counter": counter, "service": code, "recall": kind == "recalled",
         "at": at.astimezone(branch.zone).isoformat(timespec="seconds")}
        for kind, at, label, counter, code in rows
    ]


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
