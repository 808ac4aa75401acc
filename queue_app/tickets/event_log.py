"""The append-only ticket event log: every change of a ticket is a row, announced after commit.

A row is written with a plain INSERT, not added to the session as an object: every issue, call
and finish writes one, and the ORM's unit of work for an object costs several times the INSERT.
Whoever needs the rows inside the transaction (the webhooks' outbox) reads them from the
announcement (core/events.py `pending`), in the order they were written.
"""
from datetime import datetime

from sqlalchemy.orm import Session

from queue_app.core import events
from queue_app.tickets.models import Ticket, TicketEvent

_INSERT = TicketEvent.__table__.insert()


def record(
    session: Session,
    ticket: Ticket,
    type_: str,
    at: datetime,
    *,
    counter_id: int | None = None,
    staff_id: int | None = None,
    data: dict | None = None,
) -> None:
    if ticket.id is None:
        session.flush()
    row = {"ticket_id": ticket.id, "branch_id": ticket.branch_id, "type": type_, "at": at,
           "counter_id": counter_id, "staff_id": staff_id, "data": data or {}}
    session.connection().execute(_INSERT, row)
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
            logged=row,
        )
    )
