"""The queue order: which waiting ticket a counter calls next. The one place the rule lives.

Among the waiting tickets of the services a counter serves (current local day), at the moment
`now` the counter calls:

1. a **due booking** first: a checked-in booked visit (priority "appointment") whose booked start
   is at or before `now`; among themselves by booked start (then ticket id). A booked visit is
   served at its time, ahead of every walk-in issued before it.
2. otherwise the walk-ins and other classes by `sort_key = effective_at - credit` (then id);
3. a booking checked in **early** (start still ahead) only when nothing of 1 or 2 is waiting for
   the counter: it waits for its start unless the counter would otherwise stand idle.

No class starves: walk-ins keep their mutual order (PRIORITY_CREDITS bounds the credits),
and due bookings are bounded by booking capacity (slots per interval from the staffing plan), so
between bookings the counters go back to the walk-in line.

`call_next` (queueing.py) uses `claim_order` in its single claiming statement; the estimator
(estimates.py) plays the same rule with `rank`/`is_due`; the simulator drives `call_next` itself.

**People ahead** of a waiting ticket (the one figure the phone page, the ticket API, the printed
and kiosk ticket and the "almost your turn" alert show) are the waiting tickets this order calls
before it, among the services that share a counter with its service, judged at `judged_at`: now
for a walk-in, its booked start for a booking checked in early (the moment it becomes due). So a
walk-in counts the due bookings and the walk-ins before it in line, not the early bookings; a
booking counts only the bookings with an earlier start, never walk-ins (it goes before all of
them at its time). `count_ahead` is that figure for one ticket in one SQL query, `ahead_counts`
for a whole branch in one pass over its waiting tickets; the tests hold them equal. A kiosk or
display tile per service shows something else, "waiting for this service", and says so.
"""
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import CounterService
from queue_app.core.models import UTCDateTime
from queue_app.tickets.models import Ticket

# Minutes of queue a ticket's class moves it ahead (sort_key = effective_at - credit).
PRIORITY_CREDITS: dict[str, timedelta] = {
    "normal": timedelta(0),
    "appointment": timedelta(0),  # booked visits are ordered by their start time instead
    "priority": timedelta(minutes=5),  # customer tier, when a manager enables it
    "accessibility": timedelta(minutes=10),  # elderly, disabled, pregnant
}
MAX_CREDIT = max(PRIORITY_CREDITS.values())

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


def judged_at(priority: str, effective_at: datetime, now: datetime) -> datetime:
    """The moment a ticket's place is judged: now, or its booked start if that is later."""
    return max(now, effective_at) if is_booked(priority) else now


def ahead_counts(waiting: Iterable, shared: Callable[[int], set[int]], now: datetime) -> dict[int, int]:
    """People ahead (see the module text) of each waiting ticket of a branch's day, by id.

    `waiting`: objects with id, service_id, sort_key, booked and start_at (estimates.WaitingNow);
    `shared(service_id)`: the services sharing a counter with it (itself included). Linear in the
    tickets: in the order bookings-by-start then walk-ins-by-key, a booking has exactly the
    bookings before it ahead, a walk-in everything before it except the early bookings.
    """
    waiting = list(waiting)
    bookings = sorted((w for w in waiting if w.booked), key=lambda w: (w.start_at, w.id))
    line = sorted((w for w in waiting if not w.booked), key=lambda w: (w.sort_key, w.id))
    booked: dict[int, int] = {}  # bookings passed so far, per service
    counted: dict[int, int] = {}  # tickets passed so far that are ahead of a walk-in, per service
    services: dict[int, tuple[int, ...]] = {}
    ahead = {}
    for ticket in bookings:
        sharing = services.setdefault(ticket.service_id, tuple(shared(ticket.service_id)))
        ahead[ticket.id] = sum(booked.get(s, 0) for s in sharing)
        booked[ticket.service_id] = booked.get(ticket.service_id, 0) + 1
        if is_due(ticket.start_at, now):  # an early booking is not ahead of a walk-in
            counted[ticket.service_id] = counted.get(ticket.service_id, 0) + 1
    for ticket in line:
        if ticket.service_id not in services:
            services[ticket.service_id] = tuple(shared(ticket.service_id))
        ahead[ticket.id] = sum(counted.get(s, 0) for s in services[ticket.service_id])
        counted[ticket.service_id] = counted.get(ticket.service_id, 0) + 1
    return ahead


def _count_ahead_statement():
    """count_ahead's query with the ticket's figures as parameters (built once: building it cost
    more than running it, once for every ticket the simulator issues)."""
    place, within, ticket_id = claim_order(Ticket, bindparam("at", type_=UTCDateTime))
    my_place, my_within, my_id = bindparam("place"), bindparam("within", type_=UTCDateTime), bindparam("ticket_id")
    service_id = bindparam("service_id")
    linked = select(CounterService.counter_id).where(CounterService.service_id == service_id)
    services = select(CounterService.service_id).where(CounterService.counter_id.in_(linked))
    return select(func.count(Ticket.id)).where(
        Ticket.branch_id == bindparam("branch_id"), Ticket.local_date == bindparam("day"),
        Ticket.status == "waiting",
        or_(Ticket.service_id == service_id, Ticket.service_id.in_(services)),
        or_(place < my_place,
            and_(place == my_place, or_(within < my_within, and_(within == my_within, ticket_id < my_id)))),
    )


_COUNT_AHEAD = _count_ahead_statement()


def count_ahead(session: Session, ticket, now: datetime) -> int:
    """People ahead of one waiting ticket (0 once it is called), in one query: the waiting tickets
    of its day and of the services sharing a counter with its service that `claim_order`, judged
    at `judged_at`, puts before it."""
    if ticket.status != "waiting":
        return 0
    at = judged_at(ticket.priority, ticket.effective_at, now)
    place, within, ticket_id = key(ticket.priority, ticket.effective_at, ticket.sort_key, ticket.id, at)
    return session.scalar(_COUNT_AHEAD, {
        "at": at, "place": place, "within": within, "ticket_id": ticket_id, "service_id": ticket.service_id,
        "branch_id": ticket.branch_id, "day": ticket.local_date,
    }) or 0
