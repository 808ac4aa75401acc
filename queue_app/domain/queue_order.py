"""The queue order: which waiting ticket a counter calls next. The one place the rule lives.

Among the waiting tickets of the services a counter serves (current local day), at the moment
`now` the counter calls:

1. a **due booking** first: a checked-in booked visit (priority "appointment") whose booked start
   is at or before `now`; among themselves by booked start (then ticket id). A booked visit is
   served at its time, ahead of every walk-in issued before it.
2. otherwise the walk-ins and other classes by `sort_key = effective_at - credit` (then id);
3. a booking checked in **early** (start still ahead) only when nothing of 1 or 2 is waiting for
   the counter: it waits for its start unless the counter would otherwise stand idle.

No class starves: walk-ins keep their mutual order (queueing.PRIORITY_CREDITS bounds the credits),
and due bookings are bounded by booking capacity (slots per interval from the staffing plan), so
between bookings the counters go back to the walk-in line.

`call_next` (queueing.py) uses `claim_order` in its single claiming statement; the estimator
(estimates.py) plays the same rule with `rank`/`is_due`; the simulator drives `call_next` itself.
"""
from datetime import datetime

from sqlalchemy import case

BOOKED = "appointment"  # the priority of a ticket made by checking in a booking

DUE_BOOKING, IN_LINE, EARLY_BOOKING = 0, 1, 2


def is_booked(priority: str) -> bool:
    return priority == BOOKED


def is_due(start: datetime, at: datetime) -> bool:
    """A booked visit checked in is due (goes before every walk-in) from its booked start on."""
    return start <= at


def rank(priority: str, effective_at: datetime, now: datetime) -> int:
    if not is_booked(priority):
        return IN_LINE
    return DUE_BOOKING if is_due(effective_at, now) else EARLY_BOOKING


def key(priority: str, effective_at: datetime, sort_key: datetime, ticket_id: int, now: datetime) -> tuple:
    """The Python twin of `claim_order`: sort waiting tickets by it to get the call order at `now`."""
    return (rank(priority, effective_at, now), effective_at if is_booked(priority) else sort_key, ticket_id)


def claim_order(ticket, now: datetime) -> tuple:
    """ORDER BY expressions for `ticket` (the Ticket class or an alias) at `now`: one CASE for the
    class above, then booked start for bookings or sort_key for the rest, then id. Plain SQL, the
    same on SQLite and PostgreSQL."""
    booked = ticket.priority == BOOKED
    place = case((booked & (ticket.effective_at <= now), DUE_BOOKING), (booked, EARLY_BOOKING), else_=IN_LINE)
    within = case((booked, ticket.effective_at), else_=ticket.sort_key)
    return place, within, ticket.id
