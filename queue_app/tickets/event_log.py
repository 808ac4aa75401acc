"""The append-only ticket event log: every change of a ticket is a row, announced after commit."""
from datetime import datetime

from sqlalchemy.orm import Session

from queue_app.core import events
from queue_app.tickets.models import Ticket, TicketEvent


def record(
    session: Session,
    ticket: Ticket,
    type_: str,
    at: datetime,
    *,
    counter_id: int | None = None,
    staff_id: int | None = None,
    data: dict | None = None,
) -> TicketEvent:
    if ticket.id is None:
        session.flush()
    row = TicketEvent(
        ticket_id=ticket.id,
        branch_id=ticket.branch_id,
        type=type_,
        at=at,
        counter_id=counter_id,
        staff_id=staff_id,
        data=data or {},
    )
    session.add(row)
    events.announce(
        session,
        events.QueueChange(
            type=type_,
            branch_id=ticket.branch_id,
            ticket_id=ticket.id,
            label=ticket.label,
            service_id=ticket.service_id,
            status=ticket.status,
            counter_id=ticket.counter_id,
            at=at,
            data=dict(data or {}),
        )
    )
    return row
