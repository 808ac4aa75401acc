"""Wait estimates: when will each waiting ticket be called, with an 80 % range.

Position x average service time / open counters is badly wrong with several services, counters
that open and close through the day, appointments that take their booked place, and people who
give up. So the estimator plays the queue forward instead, many times (Monte Carlo), from the
branch's current state with parameters learned from its own history:

- service times per service: the counter's occupancy per visit (call to finish, no-shows included)
  from the last weeks, winsorised so one forgotten "finish" does not move them, with the
  service's configured minutes as the prior while data is thin; a per-counter speed factor,
  shrunk towards 1, where a counter has enough visits;
- busy counters: the remaining time of the visit in progress, given how long it has run;
- counter shifts: a counter serves until its shift ends and starts at its next shift; counters
  whose shift ends at closing time finish the queue (everyone with a ticket is served);
- skills: each counter takes the earliest ticket of the services it serves, as call_next does;
- bookings, checked in or still to come (with the learned no-show rate and punctuality), in the
  queue order of queue_order.py: a counter freeing at or after a booking's start (and its
  arrival) calls it before any walk-in; a booking checked in early is called before its start
  only when no waiting ticket is left for the counter;
- people ahead who give up (a patience rate learned from tickets left while waiting).

Every waiting ticket's call time comes out of the same replications, so one run serves the whole
branch. The point estimate is the mean, the range the 10th-90th percentiles: the wait of a holder
who stays. (Weighting replications by the chance the holder has not given up yet made no
difference overall and biased long waits low in bench/wait_estimates.py.)

The learning and the simulation know nothing of Flask; everything takes a session and `now`, so
the branch simulator (demo/simulation.py) drives it with its own clock.
"""
import math
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, selectinload

from queue_app.booking.models import Appointment
from queue_app.booking.rules import rules_for
from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch, Counter, CounterService, Service
from queue_app.core.models import utcnow
from queue_app.tickets import numbering, queue_order
from queue_app.tickets.models import Ticket, TicketEvent

REPLICATIONS = 300
# One run at a time per process. A run is pure CPU under the GIL: several at once finish no
# sooner, and every thread holding the database write lock would queue behind them for the GIL
# after each statement (a convoy that cut issuance throughput by three quarters).
_playing = threading.Lock()
LEARNING_DAYS = 28
RELEARN_AFTER = timedelta(minutes=60)
PRIOR_OBSERVATIONS = 20  # while a service has fewer visits, the configured minutes fill in
PRIOR_CV = 0.6
COUNTER_SHRINK = 50  # visits' worth of weight pulling a counter's speed factor towards 1
MIN_COUNTER_VISITS = 30
PAUSED_BACK_MINUTES = 5.0  # a paused counter is assumed back this soon
NO_SHOW_PRIOR = 0.1
PRIOR_ARRIVAL_OFFSET = (-8.0, 10.0)  # appointment arrival minus booked start (mean, sd), minutes
RANGE = (0.10, 0.90)

MINUTE = 60.0


@dataclass(frozen=True)
class Estimate:
    """What a ticket holder is told.

    state: "waiting" (minutes and range given), "no_counter" (no counter serves the service now;
    opens_at says when the next one opens, with minutes counted from then on, or None when none
    does today), "closed" (after hours: no counter open or due today), "not_waiting" (called,
    served or gone).
    """

    state: str
    minutes: int | None = None
    low: int | None = None
    high: int | None = None
    opens_at: datetime | None = None
    mean: float | None = None  # unrounded minutes, for reports

    def as_dict(self, zone=None) -> dict:
        opens = None
        if self.opens_at is not None:
            opens = (self.opens_at.astimezone(zone) if zone else self.opens_at).isoformat(timespec="minutes")
        return {"state": self.state, "minutes": self.minutes, "low": self.low, "high": self.high,
                "opens_at": opens}


NOT_WAITING = Estimate("not_waiting")


# --- learned parameters -------------------------------------------------------------------------

@dataclass
class Learned:
    service_samples: dict[int, np.ndarray]  # minutes per visit, winsorised, prior-filled
    service_means: dict[int, float]
    service_visits: dict[int, int]  # real observations behind each sample
    counter_speed: dict[int, float]
    patience_rate: float  # walk-ins giving up while waiting, per minute waited
    no_show: float  # share of bookings never checked in
    arrival_offsets: np.ndarray  # check-in minus booked start, minutes
    learned_at: datetime


def _prior_sample(mean: float, count: int, cv: float = PRIOR_CV) -> np.ndarray:
    """`count` evenly spaced quantiles of a lognormal with the given mean (pseudo-observations)."""
    sigma = math.sqrt(math.log(1 + cv * cv))
    mu = math.log(max(mean, 0.1)) - sigma * sigma / 2
    probabilities = (np.arange(count) + 0.5) / count
    from statistics import NormalDist

    z = np.array([NormalDist().inv_cdf(p) for p in probabilities])
    return np.exp(mu + sigma * z)


def winsorise(minutes: np.ndarray) -> np.ndarray:
    """Cap values above Q3 + 3 IQR (a far-out fence): a visit left open for hours counts as long,
    not as hours."""
    if len(minutes) < 8:
        return minutes
    q1, q3 = np.percentile(minutes, [25, 75])
    return np.minimum(minutes, q3 + 3 * (q3 - q1))


def service_time_sample(observed: np.ndarray, configured_minutes: float) -> np.ndarray:
    observed = winsorise(np.asarray(observed, dtype=float))
    missing = PRIOR_OBSERVATIONS - len(observed)
    if missing > 0:
        observed = np.concatenate([observed, _prior_sample(configured_minutes, missing)])
    return observed


def learn(session: Session, branch: Branch, now: datetime, days: int = LEARNING_DAYS) -> Learned:
    """Fit the estimator's parameters from the branch's last `days` of tickets and bookings."""
    since = now - timedelta(days=days)
    services = session.scalars(select(Service).where(Service.branch_id == branch.id)).all()
    visits = session.execute(
        select(Ticket.service_id, Ticket.counter_id, Ticket.called_at, Ticket.finished_at)
        .where(Ticket.branch_id == branch.id, Ticket.issued_at >= since, Ticket.issued_at < now,
               Ticket.status.in_(("done", "no_show")), Ticket.called_at.is_not(None),
               Ticket.finished_at.is_not(None), Ticket.finished_at <= now)
    ).all()
    by_service: dict[int, list[float]] = {}
    for service_id, _, called, finished in visits:
        by_service.setdefault(service_id, []).append((finished - called).total_seconds() / MINUTE)
    samples, means, counts = {}, {}, {}
    for service in services:
        observed = np.array(by_service.get(service.id, []), dtype=float)
        counts[service.id] = len(observed)
        samples[service.id] = service_time_sample(observed, service.expected_minutes)
        means[service.id] = float(samples[service.id].mean())

    # Counter speed: the counter's total winsorised time over what the service means predict.
    per_counter: dict[int, list[tuple[float, float]]] = {}
    caps = {sid: float(sample.max()) for sid, sample in samples.items()}
    for service_id, counter_id, called, finished in visits:
        if counter_id is None or service_id not in means:
            continue
        minutes = min((finished - called).total_seconds() / MINUTE, caps[service_id])
        per_counter.setdefault(counter_id, []).append((minutes, means[service_id]))
    speed = {}
    for counter_id, pairs in per_counter.items():
        if len(pairs) < MIN_COUNTER_VISITS:
            continue
        ratio = sum(m for m, _ in pairs) / sum(e for _, e in pairs)
        speed[counter_id] = (len(pairs) * ratio + COUNTER_SHRINK) / (len(pairs) + COUNTER_SHRINK)

    # Patience: walk-ins who left while waiting, per minute all walk-ins spent waiting.
    left = exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.type == "left")
    waits = session.execute(
        select(Ticket.issued_at, Ticket.called_at, Ticket.finished_at, left)
        .where(Ticket.branch_id == branch.id, Ticket.issued_at >= since, Ticket.issued_at < now,
               Ticket.priority != "appointment",
               (Ticket.called_at.is_not(None)) | (and_(Ticket.status == "cancelled", left)))
    ).all()
    exposure = sum(((called or finished) - issued).total_seconds() / MINUTE
                   for issued, called, finished, _ in waits)
    gave_up = sum(1 for *_, was_left in waits if was_left)
    patience_rate = gave_up / exposure if exposure > 0 and gave_up else 0.0

    # Bookings: who shows up, and when relative to the booked start.
    booked = session.execute(
        select(Appointment.status, Appointment.start_at, Ticket.issued_at)
        .outerjoin(Ticket, Ticket.id == Appointment.ticket_id)
        .where(Appointment.branch_id == branch.id, Appointment.start_at >= since,
               Appointment.start_at < now - timedelta(hours=1),
               Appointment.status.in_(("checked_in", "no_show")))
    ).all()
    offsets = np.array([(issued - start).total_seconds() / MINUTE
                        for status, start, issued in booked if status == "checked_in" and issued], dtype=float)
    no_shows = sum(1 for status, *_ in booked if status == "no_show")
    prior_weight = 10
    no_show = (no_shows + NO_SHOW_PRIOR * prior_weight) / (len(booked) + prior_weight)
    if len(offsets) < PRIOR_OBSERVATIONS:
        mean, sd = PRIOR_ARRIVAL_OFFSET
        from statistics import NormalDist

        quantiles = (np.arange(PRIOR_OBSERVATIONS - len(offsets)) + 0.5) / (PRIOR_OBSERVATIONS - len(offsets))
        offsets = np.concatenate([offsets, [NormalDist(mean, sd).inv_cdf(q) for q in quantiles]])
    return Learned(samples, means, counts, speed, patience_rate, no_show, offsets, now)


_learned: dict[tuple[str, int], Learned] = {}
_learned_lock = threading.Lock()


def learned_for(session: Session, branch: Branch, now: datetime) -> Learned:
    """The branch's parameters, re-learned at most hourly (per database and branch)."""
    key = (str(session.get_bind().url), branch.id)
    with _learned_lock:
        cached = _learned.get(key)
    if cached is None or not (cached.learned_at <= now < cached.learned_at + RELEARN_AFTER):
        cached = learn(session, branch, now)
        with _learned_lock:
            _learned[key] = cached
    return cached


def forget_learned() -> None:
    with _learned_lock:
        _learned.clear()


# --- the branch's state now -----------------------------------------------------------------------

@dataclass
class CounterNow:
    id: int
    service_ids: frozenset[int]
    speed: float
    windows: list[tuple[float, float]]  # minutes from now when the counter calls; end may be inf
    busy_service: int | None = None
    busy_minutes: float = 0.0  # how long the visit in progress has run


@dataclass
class WaitingNow:
    id: int
    service_id: int
    sort_key: datetime
    booked: bool = False  # a checked-in booking (queue_order.py)
    start_at: datetime | None = None  # its booked start


@dataclass
class PendingBooking:
    """A booking not checked in yet whose place in the order is before some waiting tickets."""

    service_id: int
    start_at: datetime
    late_minutes: float  # now minus booked start (negative before the start)
    latest_minutes: float  # check-in closes this long after the start


@dataclass
class BranchNow:
    now: datetime
    counters: list[CounterNow]
    waiting: list[WaitingNow]
    pending: list[PendingBooking]
    opens_at: dict[int, datetime | None] = field(default_factory=dict)  # next counter per service


def _counter_windows(counter: Counter, branch: Branch, now: datetime, day, closing: datetime | None):
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


def branch_now(session: Session, branch: Branch, now: datetime, learned: Learned) -> BranchNow:
    today = numbering.local_day(now, branch.zone)
    opening = [] if branch.is_closed_on(today) else hours.day_intervals(branch.opening_hours, today, branch.zone)
    closing = opening[-1][1] if opening else None
    counters = session.scalars(
        select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id)
        .options(selectinload(Counter.service_links))
    ).unique().all()
    busy = {
        counter_id: (service_id, called_at) for counter_id, service_id, called_at in session.execute(
            select(Ticket.counter_id, Ticket.service_id, Ticket.called_at)
            .where(Ticket.branch_id == branch.id, Ticket.status.in_(("called", "serving")),
                   Ticket.counter_id.is_not(None)))
    }
    states = []
    for counter in counters:
        state = CounterNow(counter.id, frozenset(counter.service_ids), learned.counter_speed.get(counter.id, 1.0),
                           _counter_windows(counter, branch, now, today, closing))
        service_id, called_at = busy.get(counter.id, (None, None))
        if called_at is not None:
            state.busy_service = service_id
            state.busy_minutes = max(0.0, (now - called_at).total_seconds() / MINUTE)
            if not state.windows or state.windows[0][0] > 0:
                state.windows.insert(0, (0.0, math.inf))  # someone is at the counter now
        states.append(state)
    waiting = [
        WaitingNow(ticket_id, service_id, sort_key, queue_order.is_booked(priority),
                   effective_at if queue_order.is_booked(priority) else None)
        for ticket_id, service_id, sort_key, priority, effective_at in session.execute(
            select(Ticket.id, Ticket.service_id, Ticket.sort_key, Ticket.priority, Ticket.effective_at)
            .where(Ticket.branch_id == branch.id, Ticket.local_date == today, Ticket.status == "waiting")
            .order_by(Ticket.sort_key, Ticket.id)
        )
    ]
    rules = rules_for(branch)
    pending = []
    if waiting:
        # Any booking of today still to come may be due before a waiting walk-in is called.
        for service_id, start_at in session.execute(
            select(Appointment.service_id, Appointment.start_at)
            .where(Appointment.branch_id == branch.id, Appointment.status == "booked",
                   Appointment.local_date == today,
                   Appointment.start_at > now - timedelta(minutes=rules.check_in_late_minutes))
            .order_by(Appointment.start_at)
        ):
            pending.append(PendingBooking(service_id, start_at, (now - start_at).total_seconds() / MINUTE,
                                          rules.check_in_late_minutes))
    opens_at = {}  # only for services no counter serves right now
    for service_id in {w.service_id for w in waiting} | {s.id for s in branch.services}:
        starts = [c.windows[0][0] for c in states if service_id in c.service_ids and c.windows]
        if not starts or min(starts) > 0:
            opens_at[service_id] = now + timedelta(minutes=min(starts)) if starts else None
    return BranchNow(now, states, waiting, pending, opens_at)


def open_counters_for(session: Session, service_id: int) -> int:
    """Counters open now that serve the service."""
    return session.scalar(
        select(func.count(Counter.id))
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(CounterService.service_id == service_id, Counter.state == "open")
    ) or 0


# --- playing the queue forward ---------------------------------------------------------------------

def _into_windows(times: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    """When a counter free at `times` can next call: within a shift, or at the next shift's start."""
    result = np.full_like(times, math.inf)
    placed = np.zeros(times.shape, dtype=bool)
    for start, end in windows:
        fits = ~placed & (times < end)
        result[fits] = np.maximum(times[fits], start)
        placed |= fits
    return result


@dataclass
class Replications:
    call: np.ndarray  # (replications, waiting) minutes from now until called; inf: not today
    free: np.ndarray  # (replications, counters) when each counter could next call, after everyone
    state: BranchNow


@dataclass(eq=False)  # identity: the play removes placed bookings from its list
class _Booked:
    """A booking in the play: checked in (a column of the call matrix, arrival 0) or still to come."""

    service_id: int
    start_at: datetime
    start: float  # booked start, minutes from now
    arrival: np.ndarray  # per replication, minutes from now; inf: does not come
    done: np.ndarray  # per replication: already placed (or never comes)
    column: int | None = None


class _Queue:
    """One vectorised run of all replications, ticket by ticket in call order.

    Walk-ins (and other classes but bookings) go in sort-key order, each to its earliest free
    capable counter: ticket order equals call order for counters with the same skills; with
    different skills a counter takes the earliest ticket it can serve, which is what taking each
    ticket's earliest free capable counter reproduces. Bookings follow queue_order.py: before
    each walk-in, every booking due (started and arrived) by the time that walk-in would be
    called goes first, by start; bookings checked in early and not yet due when the walk-ins run
    out are called as counters free up (the idle fallback).
    """

    def __init__(self, state: BranchNow, learned: Learned, rng: np.random.Generator, replications: int):
        self.state, self.learned, self.rng, self.n = state, learned, rng, replications
        self.rows = np.arange(replications)
        counters = state.counters
        self.speed = np.array([c.speed for c in counters] or [1.0])
        self.free = np.full((replications, len(counters)), math.inf)
        for index, counter in enumerate(counters):
            if not counter.windows:
                continue
            start = np.full(replications, counter.windows[0][0])
            if counter.busy_service is not None:
                start = self._remaining(counter.busy_service, counter.busy_minutes) * counter.speed
            self.free[:, index] = _into_windows(start, counter.windows)
        self.capable: dict[int, np.ndarray] = {}
        # Counters that can call at any time from their first window on need no window arithmetic.
        self.shifted = [i for i, c in enumerate(counters) if len(c.windows) > 1 or
                        (c.windows and math.isfinite(c.windows[-1][1]))]
        self.call = np.full((replications, len(state.waiting)), math.inf)
        booked = []
        for column, ticket in enumerate(state.waiting):
            if ticket.booked:
                booked.append(_Booked(ticket.service_id, ticket.start_at, self._minutes(ticket.start_at),
                                      np.zeros(replications), np.zeros(replications, dtype=bool), column))
        for pending in state.pending:
            arrival = self._arrival(pending)
            booked.append(_Booked(pending.service_id, pending.start_at, self._minutes(pending.start_at),
                                  arrival, ~np.isfinite(arrival)))
        # Due bookings among themselves by start (checked-in ones first at equal starts).
        self.bookings = [b for b in sorted(booked, key=lambda b: (b.start_at, b.column is None))
                         if not b.done.all()]

    def _minutes(self, moment: datetime) -> float:
        return (moment - self.state.now).total_seconds() / MINUTE

    def capable_of(self, service_id: int) -> np.ndarray:
        if service_id not in self.capable:
            self.capable[service_id] = np.array(
                [i for i, c in enumerate(self.state.counters) if service_id in c.service_ids], dtype=int)
        return self.capable[service_id]

    def _sample(self, service_id: int) -> np.ndarray:
        sample = self.learned.service_samples.get(service_id)
        if sample is None or not len(sample):
            sample = _prior_sample(10, PRIOR_OBSERVATIONS)
        return self.rng.choice(sample, self.n)

    def _remaining(self, service_id: int, elapsed: float) -> np.ndarray:
        sample = self.learned.service_samples.get(service_id, np.array([10.0]))
        longer = sample[sample > elapsed]
        if len(longer) >= 5:
            return self.rng.choice(longer, self.n) - elapsed
        # Already longer than nearly every visit: it should end soon, but we do not know when.
        tail = max(1.0, 0.25 * float(sample.mean()))
        return self.rng.exponential(tail, self.n)

    def _arrival(self, booking: PendingBooking) -> np.ndarray:
        """Arrival (minutes from now) of a booking not checked in yet; inf if it will not come."""
        offsets = self.learned.arrival_offsets
        still = offsets[(offsets > booking.late_minutes) & (offsets <= booking.latest_minutes)]
        later = float(np.mean(offsets > booking.late_minutes)) if len(offsets) else 0.0
        show = (1 - self.learned.no_show) * (len(still) / len(offsets) if len(offsets) else 0.0)
        absent = self.learned.no_show + (1 - self.learned.no_show) * later
        chance = show / absent if absent > 0 else 0.0
        if not len(still) or chance <= 0:
            return np.full(self.n, math.inf)
        comes = self.rng.random(self.n) < chance
        return np.where(comes, self.rng.choice(still, self.n) - booking.late_minutes, math.inf)

    def _earliest(self, service_id: int) -> tuple[np.ndarray, np.ndarray]:
        capable = self.capable_of(service_id)
        if not len(capable):
            return np.full(self.n, math.inf), np.zeros(self.n, dtype=int)
        free = self.free[:, capable]
        pick = np.argmin(free, axis=1)
        return free[self.rows, pick], capable[pick]

    def _occupy(self, counter: np.ndarray, start: np.ndarray, service_id: int, serve: np.ndarray) -> None:
        ends = start + self._sample(service_id) * self.speed[counter]
        rows = np.flatnonzero(serve)
        self.free[rows, counter[rows]] = ends[rows]
        # Counters with a break or an early end later today: move those ends into their shifts.
        for index in self.shifted:
            moved = rows[counter[rows] == index]
            if len(moved):
                self.free[moved, index] = _into_windows(ends[moved], self.state.counters[index].windows)

    def _share(self, one: int, other: int) -> bool:
        """Whether some counter serves both services."""
        return one == other or bool(set(self.capable_of(one).tolist()) & set(self.capable_of(other).tolist()))

    def _place(self, booking: _Booked, due: np.ndarray, ready: np.ndarray) -> None:
        free, counter = self._earliest(booking.service_id)
        start = np.maximum(free, due)
        self._occupy(counter, start, booking.service_id, ready & np.isfinite(start))
        if booking.column is not None:
            self.call[ready, booking.column] = start[ready]
        booking.done |= ready
        if booking.done.all():
            self.bookings.remove(booking)

    def _admit_bookings(self, service_id: int) -> None:
        """Bookings due (booked start reached and arrived) by the time the next ticket of
        `service_id` would be called go first, by start, as call_next would take them."""
        changed = True
        while changed and self.bookings:
            changed = False
            next_call = self._earliest(service_id)[0]
            latest = float(next_call.max())
            for booking in list(self.bookings):
                if booking.start > latest:  # sorted by start: none later is due either
                    break
                if not self._share(service_id, booking.service_id):
                    continue  # its counters take it when their own next ticket comes along
                due = np.maximum(booking.arrival, booking.start)
                ready = ~booking.done & (due <= next_call)
                if ready.any():
                    self._place(booking, due, ready)
                    changed = True

    def _idle_fallback(self) -> None:
        """Checked-in bookings left when no walk-in waits: called as soon as a counter is free,
        before their start if need be (a counter does not stand idle)."""
        for booking in [b for b in self.bookings if b.column is not None]:
            self._place(booking, booking.arrival, ~booking.done)

    def run(self) -> Replications:
        waiting = self.state.waiting
        call = self.call
        rate = self.learned.patience_rate
        for column, ticket in enumerate(waiting):
            if ticket.booked:
                continue  # placed by _admit_bookings or _idle_fallback
            if self.bookings:
                self._admit_bookings(ticket.service_id)
            start, counter = self._earliest(ticket.service_id)
            call[:, column] = start
            finite = np.isfinite(start)
            if rate > 0:
                stays = self.rng.exponential(1 / rate, self.n) >= start
            else:
                stays = np.ones(self.n, dtype=bool)
            self._occupy(counter, start, ticket.service_id, finite & stays)
        self._idle_fallback()
        return Replications(call, self.free, self.state)

    def next_ticket(self, service_id: int) -> np.ndarray:
        """Call times of a ticket taken now for a service, behind everyone (the display's figure)."""
        if self.bookings:
            self._admit_bookings(service_id)
        return self._earliest(service_id)[0]


def _summaries(calls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column (ticket): the share of replications with a call today, and the mean and
    10th/90th percentiles of the call time among them."""
    finite = np.isfinite(calls)
    share = finite.mean(axis=0)
    counted = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, calls, 0.0).sum(axis=0) / counted
    ordered = np.sort(calls, axis=0)  # inf sorts last
    columns = np.arange(calls.shape[1])
    low = ordered[np.minimum((RANGE[0] * counted).astype(int), counted - 1), columns]
    high = ordered[np.minimum((RANGE[1] * counted).astype(int), counted - 1), columns]
    return share, mean, low, high


def _summarise(share: float, mean: float, low: float, high: float, service_id: int, state: BranchNow,
               closed: bool) -> Estimate:
    """One ticket's estimate from its column of _summaries.

    "no_counter" when no counter serves the service right now: with opens_at (and the minutes,
    counted from then on) when one opens later today, without when none does.
    """
    if closed:
        return Estimate("closed")
    waiting_for_counter = service_id in state.opens_at
    opens_at = state.opens_at.get(service_id)
    if share < 0.5:
        return Estimate("no_counter", opens_at=opens_at)
    return Estimate("no_counter" if waiting_for_counter else "waiting", minutes=max(0, round(mean)),
                    low=max(0, round(low)), high=max(0, round(high)), opens_at=opens_at, mean=float(mean))


@dataclass
class BranchEstimates:
    tickets: dict[int, Estimate]  # waiting tickets: minutes from now until called
    new_ticket: dict[int, Estimate]  # per service: a ticket taken now
    ahead: dict[int, int]  # people ahead of each waiting ticket (queue_order.ahead_counts)


def estimate_branch(session: Session, branch: Branch, now: datetime | None = None, *,
                    replications: int = REPLICATIONS, seed: int | None = None,
                    learned: Learned | None = None, per_service: bool = True) -> BranchEstimates:
    """Estimates for every waiting ticket of the branch and, with `per_service`, for a ticket
    taken now in each service. Without a `seed`, the replications are seeded from the queue's
    contents, so the same queue gives the same figures instead of jittering between pushes."""
    now = now or utcnow()
    learned = learned or learned_for(session, branch, now)
    state = branch_now(session, branch, now, learned)
    if seed is None:
        seed = zlib.crc32(repr((branch.id, [w.id for w in state.waiting])).encode())
    rng = np.random.default_rng(seed)
    with _playing:
        queue = _Queue(state, learned, rng, replications)
        runs = queue.run()
    closed = not any(c.windows for c in state.counters)
    tickets = {}
    shared: dict[int, set[int]] = {}

    def sharing(service_id: int) -> set[int]:
        if service_id not in shared:
            shared[service_id] = {s for c in state.counters if service_id in c.service_ids
                                  for s in c.service_ids} | {service_id}
        return shared[service_id]

    if state.waiting:
        shares, means, lows, highs = _summaries(runs.call)
    for column, ticket in enumerate(state.waiting):
        tickets[ticket.id] = _summarise(shares[column], means[column], lows[column], highs[column],
                                        ticket.service_id, state, closed)
    ahead = queue_order.ahead_counts(state.waiting, sharing, now)  # people ahead, queue_order.py
    new_ticket = {}
    for service in branch.services if per_service else []:
        if not service.active:
            continue
        share, mean, low, high = (v[0] for v in _summaries(queue.next_ticket(service.id)[:, None]))
        new_ticket[service.id] = _summarise(share, mean, low, high, service.id, state, closed)
    return BranchEstimates(tickets, new_ticket, ahead)


def estimate_ticket(session: Session, ticket: Ticket, now: datetime | None = None) -> Estimate:
    """A waiting ticket's estimate: minutes from now until it is called."""
    if ticket.status != "waiting":
        return NOT_WAITING
    return estimate_branch(session, ticket.branch, now).tickets.get(ticket.id, NOT_WAITING)
