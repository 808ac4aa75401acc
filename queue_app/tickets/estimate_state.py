"""The branch's state now, as the wait estimator reads it: counters and their windows, who waits,
bookings still to arrive."""
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.booking.rules import rules_for
from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch, Counter, CounterService
from queue_app.core.models import UTCDateTime
from queue_app.tickets import numbering, queue_order
from queue_app.tickets.estimate_learning import MINUTE, Learned
from queue_app.tickets.models import Ticket

PAUSED_BACK_MINUTES = 5.0  # a paused counter is assumed back this soon
PACED_ROWS = 64  # waiting tickets read between two turns of a paced read


@dataclass
class CounterNow:
    id: int
    service_ids: frozenset[int]
    speed: float
    windows: list[tuple[float, float]]  # minutes from now when the counter calls; end may be inf
    busy_service: int | None = None
    busy_minutes: float = 0.0  # how long the visit in progress has run
    busy_ticket: int = 0  # the ticket at the counter (its remaining time is drawn from its own stream)
    gap: float = 0.0  # learned minutes between a finish and the next call when someone waits


@dataclass
class WaitingNow:
    id: int
    service_id: int
    sort_key: datetime
    booked: bool = False  # a checked-in booking (queue_order.py)
    start_at: datetime | None = None  # its booked start
    # Joined from home and not here yet (once arrived, a remote ticket is a plain walk-in):
    away: bool = False
    travel: float = 0.0  # the holder's trip, minutes
    set_off: float | None = None  # minutes from now (<= 0) "Time to set off" went; None: not yet
    held: bool = False  # already held back once: called again before arriving, it is a no-show


def waiting_now(ticket_id: int, service_id: int, sort_key: datetime, priority: str, effective_at: datetime | None,
                remote: bool, arrived_at: datetime | None, travel: int | None, set_off_sent_at: datetime | None,
                held_count: int, now: datetime) -> WaitingNow:
    """A waiting ticket as the estimator plays it, from its row."""
    booked = queue_order.is_booked(priority)
    waiting = WaitingNow(ticket_id, service_id, sort_key, booked, effective_at if booked else None)
    if remote and arrived_at is None:
        waiting.away, waiting.travel, waiting.held = True, float(travel or 0), held_count > 0
        if set_off_sent_at is not None:
            waiting.set_off = min(0.0, (set_off_sent_at - now).total_seconds() / MINUTE)
    return waiting


# The columns waiting_now reads, in its order after `now`.
WAITING_COLUMNS = (Ticket.id, Ticket.service_id, Ticket.sort_key, Ticket.priority, Ticket.effective_at,
                   Ticket.remote, Ticket.arrived_at, Ticket.travel_minutes, Ticket.set_off_sent_at,
                   Ticket.held_count)


@dataclass
class PendingBooking:
    """A booking not checked in yet whose place in the order is before some waiting tickets."""

    service_id: int
    start_at: datetime
    late_minutes: float  # now minus booked start (negative before the start)
    latest_minutes: float  # check-in closes this long after the start
    appointment_id: int = 0  # whose random stream its arrival and visit are drawn from


@dataclass
class BranchNow:
    now: datetime
    counters: list[CounterNow]
    waiting: list[WaitingNow]
    pending: list[PendingBooking]
    opens_at: dict[int, datetime | None] = field(default_factory=dict)  # next counter per service
    held_places: int = 3  # how far back a remote ticket called before arriving goes (postpone_places)
    set_off_margin: float = 5.0  # the branch's set_off_margin_minutes


# The reads of a full run, built once, as plain columns: a run is the hot path of every estimate
# that is not one more step on the played queue (and of every ticket the simulator issues), and
# loading counters as ORM objects (each joined to its branch) cost more than playing the queue.
_BRANCH_ID = bindparam("branch_id")
_TODAY = bindparam("today")
_COUNTERS = (select(Counter.id, Counter.state, Counter.shifts).where(Counter.branch_id == _BRANCH_ID)
             .order_by(Counter.id))
_COUNTER_SERVICES = (select(CounterService.counter_id, CounterService.service_id)
                     .join(Counter, Counter.id == CounterService.counter_id).where(Counter.branch_id == _BRANCH_ID))
_AT_COUNTERS = select(Ticket.counter_id, Ticket.service_id, Ticket.called_at, Ticket.id).where(
    Ticket.branch_id == _BRANCH_ID, Ticket.status.in_(("called", "serving")), Ticket.counter_id.is_not(None))
# Today's waiting tickets in queue order (the played queue picks up newer ones with it too).
WAITING_TODAY = (select(*WAITING_COLUMNS)
                 .where(Ticket.branch_id == _BRANCH_ID, Ticket.local_date == _TODAY, Ticket.status == "waiting")
                 .order_by(Ticket.sort_key, Ticket.id))
_BOOKINGS_TO_COME = (
    select(Appointment.id, Appointment.service_id, Appointment.start_at)
    .where(Appointment.branch_id == _BRANCH_ID, Appointment.status == "booked", Appointment.local_date == _TODAY,
           Appointment.start_at > bindparam("since", type_=UTCDateTime))
    .order_by(Appointment.start_at)
)


def _counter_windows(counter, branch: Branch, now: datetime, day, closing: datetime | None):
    """`counter`: its state and shifts (a Counter, or a row of _COUNTERS)."""
    plan = counter.shifts or branch.opening_hours
    intervals = [] if branch.is_closed_on(day) else hours.day_intervals(plan, day, branch.zone)
    windows = []
    for start, end in intervals:
        if end <= now:
            continue
        start_min = max(0.0, (start - now).total_seconds() / MINUTE)
        # Staff whose shift ends at closing serve everyone who already has a ticket.
        end_min = math.inf if closing is not None and end >= closing else (end - now).total_seconds() / MINUTE
        windows.append((start_min, end_min))
    if counter.state == "open":
        if not windows or windows[0][0] > 0:
            windows.insert(0, (0.0, math.inf if not windows else windows[0][0]))
    elif counter.state == "paused":
        windows = [(max(s, PAUSED_BACK_MINUTES), e) for s, e in windows if e > PAUSED_BACK_MINUTES]
        if not windows:
            windows = [(PAUSED_BACK_MINUTES, math.inf)]
    else:  # closed now: capacity only from its next shift on
        windows = [(s, e) for s, e in windows if s > 0]
    return windows


def branch_now(session: Session, branch: Branch, now: datetime, learned: Learned,
               pace: Callable[[], None] | None = None) -> BranchNow:
    """The branch as the estimator plays it from `now`. `pace`: called between blocks of the waiting
    line read (a background replay taking turns with requests, core/request_line.py): reading and
    converting a line of 2,600 took 20 ms of CPU in one go, a stall for every request in flight."""
    today = numbering.local_day(now, branch.zone)
    opening = [] if branch.is_closed_on(today) else hours.day_intervals(branch.opening_hours, today, branch.zone)
    closing = opening[-1][1] if opening else None
    where = {"branch_id": branch.id, "today": today}
    service_ids: dict[int, set[int]] = {}
    for counter_id, service_id in session.execute(_COUNTER_SERVICES, where):
        service_ids.setdefault(counter_id, set()).add(service_id)
    busy = {counter_id: (service_id, called_at, ticket_id)
            for counter_id, service_id, called_at, ticket_id in session.execute(_AT_COUNTERS, where)}
    states = []
    for counter in session.execute(_COUNTERS, where):
        state = CounterNow(counter.id, frozenset(service_ids.get(counter.id, ())),
                           learned.counter_speed.get(counter.id, 1.0),
                           _counter_windows(counter, branch, now, today, closing),
                           gap=learned.counter_gap.get(counter.id, 0.0))
        service_id, called_at, ticket_id = busy.get(counter.id, (None, None, 0))
        if called_at is not None:
            state.busy_service, state.busy_ticket = service_id, ticket_id
            state.busy_minutes = max(0.0, (now - called_at).total_seconds() / MINUTE)
            if not state.windows or state.windows[0][0] > 0:
                state.windows.insert(0, (0.0, math.inf))  # someone is at the counter now
        states.append(state)
    waiting = []
    # On the connection (the reads above autoflushed already): the ORM's result buffers every row
    # at the first fetch, this one reads them as asked, so a paced read gives way between blocks.
    for rows in session.connection().execute(WAITING_TODAY, where).partitions(PACED_ROWS):
        waiting.extend(waiting_now(*row, now) for row in rows)
        if pace is not None:
            pace()
    rules = rules_for(branch)
    pending = []
    if waiting:
        # Any booking of today still to come may be due before a waiting walk-in is called.
        since = now - timedelta(minutes=rules.check_in_late_minutes)
        for appointment_id, service_id, start_at in session.execute(_BOOKINGS_TO_COME, {**where, "since": since}):
            pending.append(PendingBooking(service_id, start_at, (now - start_at).total_seconds() / MINUTE,
                                          rules.check_in_late_minutes, appointment_id))
    opens_at = {}  # only for services no counter serves right now
    for service_id in {w.service_id for w in waiting} | {s.id for s in branch.services}:
        starts = [c.windows[0][0] for c in states if service_id in c.service_ids and c.windows]
        if not starts or min(starts) > 0:
            opens_at[service_id] = now + timedelta(minutes=min(starts)) if starts else None
    return BranchNow(now, states, waiting, pending, opens_at, branch.postpone_places or 0,
                     float(branch.set_off_margin_minutes or 0))


def open_counters_for(session: Session, service_id: int) -> int:
    """Counters open now that serve the service."""
    return session.scalar(
        select(func.count(Counter.id))
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(CounterService.service_id == service_id, Counter.state == "open")
    ) or 0
