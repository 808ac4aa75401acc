"""Ticket numbers per branch, prefix and branch-local day, race free.

One upsert (`INSERT ... ON CONFLICT DO UPDATE SET last_number = last_number + 1 RETURNING`) both
creates the day's counter row and increments it atomically on SQLite and PostgreSQL; the unique
constraint on ticket (branch, local_date, prefix, number) is the backstop.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.tickets.models import TicketSequence

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _upsert(dialect: str):
    return (
        _INSERTS[dialect](TicketSequence)
        .values(branch_id=bindparam("branch_id"), local_date=bindparam("day"), prefix=bindparam("prefix"),
                last_number=1)
        .on_conflict_do_update(
            index_elements=["branch_id", "local_date", "prefix"],
            set_={"last_number": TicketSequence.last_number + 1},
        )
        .returning(TicketSequence.last_number)
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in _INSERTS}  # built once: issuing is a hot path


def next_number(session: Session, branch_id: int, day: date, prefix: str) -> int:
    stmt = _UPSERTS[session.get_bind().dialect.name]
    # On the connection: a plain Core statement, without the ORM's bulk-insert machinery.
    return session.connection().execute(stmt, {"branch_id": branch_id, "day": day, "prefix": prefix}).scalar_one()


def format_label(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"
