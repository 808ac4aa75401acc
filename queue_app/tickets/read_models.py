"""Read models of a branch's queue: what displays, staff consoles and the API show."""
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core.models import utcnow
from queue_app.tickets import estimates, numbering, played_queue, queue_order, remote_rules
from queue_app.tickets.models import Ticket, TicketEvent


def _status(ticket: Ticket, ahead: int, estimate: estimates.Estimate, now: datetime | None = None) -> dict:
    waiting = ticket.status == "waiting"
    shows_counter = ticket.counter is not None and ticket.status in ("called", "serving")
    return {
        "label": ticket.label,
        "status": ticket.status,
        "service": ticket.service.code,
        "service_name": ticket.service.name,
        # Names in other languages travel with the default one: the page picks its own
        # (catalogue.pick_name; live.js localName), so one push serves every language.
        "service_names": dict(ticket.service.names or {}),
        "position": ahead + 1 if waiting else 0,
        "ahead": ahead if waiting else 0,
        "estimate": estimate.as_dict(ticket.branch.zone),
        "almost_turn": waiting and ticket.almost_turn_at is not None,
        "counter": ticket.counter.name if shows_counter else None,
        "counter_names": dict(ticket.counter.names or {}) if shows_counter else {},
        "postponed": ticket.postponed,
        "issued_at": ticket.issued_at.astimezone(ticket.branch.zone).isoformat(timespec="seconds"),
        # A booked visit (served at its time, queue_order.py): its booked start, branch local.
        "booked_start": ticket.effective_at.astimezone(ticket.branch.zone).isoformat(timespec="minutes")
        if queue_order.is_booked(ticket.priority) else None,
        # Joined from home: trip, "Leave by" (branch local), arrived (remote_rules.py); None otherwise.
        "remote": remote_rules.remote_status(ticket, estimate, now or utcnow()),
    }


def ticket_status(session: Session, ticket: Ticket, now: datetime | None = None,
                  found: estimates.BranchEstimates | None = None) -> dict:
    """What the holder of a ticket sees: place in line, estimate, counter; no personal data.
    `found`: the branch's estimates when the caller already has them (just issued)."""
    if ticket.status != "waiting":
        return _status(ticket, 0, estimates.NOT_WAITING, now)
    if found is None or ticket.id not in found.tickets:
        found = estimates.estimate_branch(session, ticket.branch, now, per_service=False)
    return _status(ticket, found.ahead.get(ticket.id, 0), found.tickets.get(ticket.id, estimates.NOT_WAITING), now)


def waiting_statuses(
    session: Session, branch: Branch, only: set[int] | None = None, now: datetime | None = None,
) -> tuple[dict[int, dict], dict[int, estimates.Estimate]]:
    """ticket_status of the branch's waiting tickets (for pushes), and the estimate for a ticket
    taken now in each service (for displays).

    One estimator run covers the whole branch, and is kept as its played queue (the next tickets
    issued join it); full statuses are built only for the tickets in `only` (those someone is
    watching), or for all when `only` is None.
    """
    played = played_queue.play(session, branch, now or utcnow())
    with played.lock:
        found = estimates.summarise(played.queue, branch)
    wanted = list(found.tickets) if only is None else [i for i in only if i in found.tickets]
    statuses = {}
    if wanted:
        for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(wanted))):
            statuses[ticket.id] = _status(ticket, found.ahead[ticket.id], found.tickets[ticket.id], now)
    return statuses, found.new_ticket


def recent_calls(session: Session, branch: Branch, limit: int = 6, now: datetime | None = None) -> list[dict]:
    """The last tickets called (or recalled) today, newest first: label, counter, time."""
    today = numbering.local_day(now or utcnow(), branch.zone)
    rows = session.execute(
        select(TicketEvent.type, TicketEvent.at, Ticket.label, Counter.name, Counter.names, Service.code)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .join(Counter, Counter.id == TicketEvent.counter_id)
        .join(Service, Service.id == Ticket.service_id)
        .where(TicketEvent.branch_id == branch.id, TicketEvent.type.in_(("called", "recalled")),
               Ticket.local_date == today)
        .order_by(TicketEvent.id.desc())
        .limit(limit)
    ).all()
    return [
        {"label": label, "counter": counter, "counter_names": dict(names or {}), "service": code,
         "recall": kind == "recalled", "at": at.astimezone(branch.zone).isoformat(timespec="seconds")}
        for kind, at, label, counter, names, code in rows
    ]


def queue_summary(session: Session, branch: Branch, now: datetime | None = None,
                  per_service: dict[int, estimates.Estimate] | None = None) -> dict:
    """Waiting per service with the wait for a ticket taken now, and now serving per counter,
    for the branch's current local day. `per_service` passes in estimates already made.

    Numbers and counters only: no names or contact data, so displays can show it all.
    """
    now = now or utcnow()
    today = numbering.local_day(now, branch.zone)
    if per_service is None:
        per_service = estimates.estimate_branch(session, branch, now).new_ticket
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
    # Tickets joined from home still waiting, and whether their holders are here (staff consoles).
    remote = session.execute(
        select(Ticket.label, Service.code, Ticket.arrived_at.is_not(None))
        .join(Service, Service.id == Ticket.service_id)
        .where(Ticket.branch_id == branch.id, Ticket.local_date == today, Ticket.status == "waiting",
               Ticket.remote.is_(True))
        .order_by(Ticket.sort_key, Ticket.id)
    ).all()
    return {
        "branch": branch.slug,
        "local_date": today.isoformat(),
        "waiting": [
            {"service": s.code, "name": s.name, "names": dict(s.names or {}), "count": waiting_counts.get(s.id, 0),
             "estimate": per_service.get(s.id, estimates.NOT_WAITING).as_dict(branch.zone)}
            for s in services
        ],
        "counters": [
            {
                "id": c.id,
                "name": c.name,
                "names": dict(c.names or {}),
                "state": c.state,
                "ticket": (
                    {"id": current[c.id].id, "label": current[c.id].label, "status": current[c.id].status}
                    if c.id in current else None
                ),
            }
            for c in counters
        ],
        "remote": [{"label": label, "service": code, "arrived": bool(arrived)} for label, code, arrived in remote],
    }
