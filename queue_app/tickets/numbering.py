"""Ticket numbers per branch, prefix and branch-local day, race free.

One upsert (`INSERT ... ON CONFLICT DO UPDATE SET last_number = last_number + 1 RETURNING`) both
creates the day's counter row and increments it atomically on SQLite and PostgreSQL; the unique
constraint on ticket (branch, local_date, prefix, number) is the backstop.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from queue_app.tickets.models import TicketSequence


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


# Written as SQL, once: SQLAlchemy's dialect INSERT ... ON CONFLICT constructs opt out of its
# statement cache (inherit_cache = False), so built as one it was compiled again for every ticket
# issued (about a tenth of an issue's CPU). The same text runs on SQLite (3.35+, for RETURNING) and
# PostgreSQL.
_NEXT_NUMBER = text(
    "INSERT INTO ticket_sequence (branch_id, local_date, prefix, last_number) "
    "VALUES (:branch_id, :day, :prefix, 1) "
    "ON CONFLICT (branch_id, local_date, prefix) DO UPDATE SET last_number = ticket_sequence.last_number + 1 "
    "RETURNING last_number"
).bindparams(bindparam("day", type_=TicketSequence.__table__.c.local_date.type))


def next_number(session: Session, branch_id: int, day: date, prefix: str) -> int:
    # On the connection: a plain Core statement, without the ORM's bulk-insert machinery.
    numbered = session.connection().execute(_NEXT_NUMBER, {"branch_id": branch_id, "day": day, "prefix": prefix})
    return numbered.scalar_one()


def format_label(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"
