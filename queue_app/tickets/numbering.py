"""Ticket numbers per branch, prefix and branch-local day, race free.

One upsert (`INSERT ... ON CONFLICT DO UPDATE SET last_number = last_number + 1 RETURNING`) both
creates the day's counter row and increments it atomically on SQLite and PostgreSQL; the unique
constraint on ticket (branch, local_date, prefix, number) is the backstop.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.tickets.models import TicketSequence

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def next_number(session: Session, branch_id: int, day: date, prefix: str) -> int:
    insert = _INSERTS[session.get_bind().dialect.name]
    stmt = (
        insert(TicketSequence)
        .values(branch_id=branch_id, local_date=day, prefix=prefix, last_number=1)
        .on_conflict_do_update(
            index_elements=["branch_id", "local_date", "prefix"],
            set_={"last_number": TicketSequence.last_number + 1},
        )
        .returning(TicketSequence.last_number)
    )
    return session.execute(stmt).scalar_one()


def format_label(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"
