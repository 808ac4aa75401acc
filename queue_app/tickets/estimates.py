"""Wait estimates: when will each waiting ticket be called, with an 80 % range.

Position x average service time / open counters is badly wrong with several services, counters
that open and close through the day, appointments that take their booked place, and people who
give up. So the estimator plays the queue forward instead, many times (Monte Carlo), from the
branch's current state with parameters learned from its own history:

- service times per service: the counter's occupancy per visit (call to finish, no-shows included)
  from the last weeks, winsorised so one forgotten "finish" does not move them, with the
  service's configured minutes as the prior while data is thin; a per-counter speed factor,
  shrunk towards 1, where a counter has enough visits; and each counter's learned pause between
  a finish and its next call while someone waits (paperwork, a word with a colleague);
- busy counters: the remaining time of the visit in progress, given how long it has run;
- counter shifts: a counter serves until its shift ends and starts at its next shift; counters
  whose shift ends at closing time finish the queue (everyone with a ticket is served);
- skills: each counter takes the earliest ticket of the services it serves, as call_next does;
- bookings, checked in or still to come (with the learned no-show rate and punctuality), in the
  queue order of queue_order.py: a counter freeing at or after a booking's start (and its
  arrival) calls it before any walk-in; a booking checked in early is called before its start
  only when no waiting ticket is left for the counter; a counter free before a booking it
  takes is due calls walk-ins of its services meanwhile, even ones played after the booking
  (with different skills, walk-ins later in line often are);
- people ahead who give up (a patience rate learned from tickets left while waiting);
- remote tickets (joined from home) not here yet: the holder arrives after "Time to set off" (sent
  when the call's low end falls to the trip plus the branch's margin) plus the trip plus a learned
  lateness, or never; called before arriving, the ticket is held back the branch's places once
  (the counter takes the next one) and a no-show the second time. A remote ticket's own figures
  are its turn if its holder is there: what it needs to know to set off.

Every waiting ticket's call time comes out of the same replications, so one run serves the whole
branch. The point estimate is the mean, the range the 10th-90th percentiles: the wait of a holder
who stays. A walk-in's figures are then corrected by the branch's calibration, learned from its
own recent estimates and the waits that followed (estimate_calibration.py). (Weighting replications by the chance the holder has not given up yet made no
difference overall and biased long waits low in bench/wait_estimates.py.)

The learning and the simulation know nothing of Flask; everything takes a session and `now`, so
the branch simulator (demo/simulation.py) drives it with its own clock.
"""
import copy
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.core.models import utcnow
from queue_app.tickets import queue_order, visit_lengths
from queue_app.tickets.estimate_calibration import Calibration
from queue_app.tickets.estimate_draws import (
    ARRIVES,
    BOOKED_VISIT,
    COMES,
    PATIENCE,
    REMAINING,
    REMOTE_ARRIVES,
    REMOTE_COMES,
    VISIT,
    TicketDraws,
    pick,
)
from queue_app.tickets.estimate_learning import MINUTE, Learned, learned_for
from queue_app.tickets.estimate_state import BranchNow, PendingBooking, WaitingNow, branch_now
from queue_app.tickets.models import Ticket

REPLICATIONS = 300
DRAW_BLOCK = 64  # walk-ins whose draws are made at once in a run (one vectorised pass each)
# One run at a time per process. A run is pure CPU under the GIL: several at once finish no
# sooner, and every thread holding the database write lock would queue behind them for the GIL
# after each statement (a convoy that cut issuance throughput by three quarters).
_playing = threading.Lock()
RANGE = (0.10, 0.90)


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
    # The estimator's own (mean, low, high) before the branch's calibration: kept on the ticket at
    # issue, so the calibration learns from the model's figures, not from its own corrections.
    model: tuple[float, float, float] | None = None

    def as_dict(self, zone=None) -> dict:
        opens = None
        if self.opens_at is not None:
            opens = (self.opens_at.astimezone(zone) if zone else self.opens_at).isoformat(timespec="minutes")
        return {"state": self.state, "minutes": self.minutes, "low": self.low, "high": self.high,
                "opens_at": opens}


NOT_WAITING = Estimate("not_waiting")


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
    """A booking in the play: checked in (a column of the call matrix, arrival 0) or still to come.

    Arrays are replaced, never changed in place, so a copied queue (_Queue.copy) can go on alone.
    """

    service_id: int
    start_at: datetime
    start: float  # booked start, minutes from now
    arrival: np.ndarray  # per replication, minutes from now; inf: does not come
    done: np.ndarray  # per replication: already placed (or never comes)
    visit: np.ndarray  # per replication: the uniform its visit length is drawn with
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

    With different skills a booking often goes first (a walk-in of another service is called
    after its start) onto a counter that is free before the booking is due: that counter calls
    walk-ins of its own services meanwhile, however late in line they are, and takes the
    booking when the one in progress ends. So the gap stays open to them as a hole before the
    booking (_fill_hole); left open when the walk-ins run out, the booking is called in it as
    soon as it is there (_close_holes). Without the hole the booking held the counter from its
    start, and the walk-ins behind it waited one booked visit too long (bench/wait_estimates.py,
    booking_heavy: the oracle over-estimated walk-ins by 1.9 minutes, 1.0 with the hole).

    `play()` leaves the queue as it stands after the last walk-in, before the idle fallback: the
    played queue that `extend` continues by one walk-in at a time (played_queue.py).
    """

    def __init__(self, state: BranchNow, learned: Learned, replications: int, salt: int = 0):
        self.state, self.learned, self.n = state, learned, replications
        self.draws = TicketDraws(replications, salt)
        self.rows = np.arange(replications)
        self.never = np.full(replications, math.inf)  # shared, read only
        counters = state.counters
        self.speed = np.array([c.speed for c in counters] or [1.0])
        self.gap = np.array([c.gap for c in counters] or [0.0])
        self.free = np.full((replications, len(counters)), math.inf)
        for index, counter in enumerate(counters):
            if not counter.windows:
                continue
            start = np.full(replications, counter.windows[0][0])
            if counter.busy_service is not None:
                # Learned visits are at the speed of an average counter: elapsed on this one is
                # scaled to it and back.
                start = visit_lengths.remaining(
                    visit_lengths.sample_for(learned, counter.busy_service), counter.busy_minutes / counter.speed,
                    self.draws.uniform(REMAINING, counter.id, counter.busy_ticket)) * counter.speed
                start = start + counter.gap
            self.free[:, index] = _into_windows(start, counter.windows)
        self.capable: dict[int, np.ndarray] = {}
        self.shifted_of: dict[int, list[tuple[int, int]]] = {}  # per service: its shifted counters
        self.shared: dict[tuple[int, int], bool] = {}  # _share's answers
        # A booking placed on a counter free before the booking is due leaves a hole there: the
        # counter calls walk-ins of its services meanwhile (they go before a booking not yet due;
        # with different skills they are often played after it), and the booking waits for the
        # one in progress. Per replication and counter: the hole (inf: none), the booking's
        # arrival and column (-1: not checked in yet). One hole per counter: a later one is not
        # opened.
        self.hole_lo = np.full(self.free.shape, math.inf)
        self.hole_hi = np.full(self.free.shape, math.inf)
        self.hole_arrival = np.zeros(self.free.shape)
        self.hole_column = np.full(self.free.shape, -1)
        self.holes = False
        # Where each counter's current window ends (inf: it calls at any time from then on, no
        # window arithmetic needed).
        self.first_end = np.array([c.windows[0][1] if c.windows else math.inf for c in counters] or [math.inf])
        self.shifted = [i for i, end in enumerate(self.first_end) if math.isfinite(end)]
        self.is_shifted = np.isfinite(self.first_end)
        # Every counter's windows as rows of one array (ends -inf past its last window), so that
        # _into_shifts moves the ends of all counters in one pass: past the day's end of a long
        # line nearly every step crosses a window's end, on every counter.
        width = max((len(c.windows) for c in counters), default=1) or 1
        self.window_starts = np.zeros((len(self.first_end), width))
        self.window_ends = np.full((len(self.first_end), width), -math.inf)
        for index, counter in enumerate(counters):
            for number, (start, end) in enumerate(counter.windows):
                self.window_starts[index, number], self.window_ends[index, number] = start, end
        self.columns: list[np.ndarray] = [self.never] * len(state.waiting)  # call times per waiting ticket
        self.line_end: tuple | None = None  # (sort_key, id) of the last walk-in played
        self.walk_ins: dict[int, int] = {}  # walk-ins played per service
        self.booked = [w for w in state.waiting if w.booked]  # checked-in bookings
        booked = []
        for column, ticket in enumerate(state.waiting):
            if ticket.booked:
                booked.append(_Booked(ticket.service_id, ticket.start_at, self._minutes(ticket.start_at),
                                      np.zeros(replications), np.zeros(replications, dtype=bool),
                                      self.draws.uniform(VISIT, ticket.id), column))
        for pending in state.pending:
            arrival = self._arrival(pending)
            booked.append(_Booked(pending.service_id, pending.start_at, self._minutes(pending.start_at),
                                  arrival, ~np.isfinite(arrival),
                                  self.draws.uniform(BOOKED_VISIT, pending.appointment_id)))
        # Due bookings among themselves by start (checked-in ones first at equal starts).
        self.bookings = [b for b in sorted(booked, key=lambda b: (b.start_at, b.column is None))
                         if not b.done.all()]

    def copy(self) -> "_Queue":
        """A copy that can be played on without changing this one (state and samples shared)."""
        other = copy.copy(self)
        other.free = self.free.copy()
        other.hole_lo, other.hole_hi = self.hole_lo.copy(), self.hole_hi.copy()
        other.hole_arrival, other.hole_column = self.hole_arrival.copy(), self.hole_column.copy()
        other.columns = list(self.columns)
        other.walk_ins = dict(self.walk_ins)
        other.bookings = [copy.copy(b) for b in self.bookings]
        return other

    def _minutes(self, moment: datetime) -> float:
        return (moment - self.state.now).total_seconds() / MINUTE

    def capable_of(self, service_id: int) -> np.ndarray:
        if service_id not in self.capable:
            self.capable[service_id] = np.array(
                [i for i, c in enumerate(self.state.counters) if service_id in c.service_ids], dtype=int)
        return self.capable[service_id]

    def _sample(self, service_id: int, uniform: np.ndarray) -> np.ndarray:
        return pick(visit_lengths.sample_for(self.learned, service_id), uniform)

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
        comes = self.draws.uniform(COMES, booking.appointment_id) < chance
        when = pick(np.sort(still), self.draws.uniform(ARRIVES, booking.appointment_id))
        return np.where(comes, when - booking.late_minutes, math.inf)

    def _earliest(self, service_id: int) -> tuple[np.ndarray, np.ndarray]:
        """When and where the next walk-in of the service is called: its earliest free capable
        counter, a hole before a booking included."""
        capable = self.capable_of(service_id)
        if not len(capable):
            return np.full(self.n, math.inf), np.zeros(self.n, dtype=int)
        calls = np.minimum(self.free, self.hole_lo) if self.holes else self.free
        if len(capable) == self.free.shape[1]:  # every counter: no need to copy the columns out
            pick = np.argmin(calls, axis=1)
            return calls[self.rows, pick], pick
        free = calls[:, capable]
        pick = np.argmin(free, axis=1)
        return free[self.rows, pick], capable[pick]

    def _occupy(self, counter: np.ndarray, start: np.ndarray, service_id: int, serve: np.ndarray,
                uniform: np.ndarray) -> None:
        if not serve.any():  # nobody served (no counter serves it today, or everyone gave up)
            return
        ends = start + self._sample(service_id, uniform) * self.speed[counter] + self.gap[counter]
        if self.holes:
            inside = serve & (start < self.free[self.rows, counter])
            if inside.any():
                self._fill_hole(counter, ends, inside)
                serve = serve & ~inside
                if not serve.any():
                    return
        self.free[self.rows, counter] = np.where(serve, self._into_shifts(counter, ends, serve),
                                                 self.free[self.rows, counter])

    def _into_shifts(self, counter: np.ndarray, ends: np.ndarray, serve: np.ndarray | None = None) -> np.ndarray:
        """Counters with a break or an early end later today: ends past the current window's end
        move into the next shift (most ends are within the current window). Changes `ends`."""
        crossing = (ends >= self.first_end[counter]) & self.is_shifted[counter]
        if serve is not None:
            crossing &= serve
        if crossing.any():
            # _into_windows for each row's own counter: the first window ending after the time.
            counters, times = counter[crossing], ends[crossing]
            fits = self.window_ends[counters] > times[:, None]
            first = fits.argmax(axis=1)
            found = fits[np.arange(len(times)), first]
            ends[crossing] = np.where(found, np.maximum(times, self.window_starts[counters, first]), math.inf)
        return ends

    def _fill_hole(self, counter: np.ndarray, ends: np.ndarray, inside: np.ndarray) -> None:
        """A walk-in called in the hole before a booking (rows `inside`): the booking is called
        when the walk-in's visit ends if that is after its due time, and all after it on that
        counter moves by as much."""
        rows, counter, ends = self.rows[inside], counter[inside], ends[inside]
        due = self.hole_hi[rows, counter]
        self.free[rows, counter] = self._into_shifts(counter, self.free[rows, counter] + np.maximum(0.0, ends - due))
        columns = self.hole_column[rows, counter]
        for column in np.unique(columns[columns >= 0]).tolist():
            mine = columns == column
            calls = self.columns[column].copy()
            calls[rows[mine]] = np.maximum(due[mine], ends[mine])
            self.columns[column] = calls
        closed = ends >= due
        self.hole_lo[rows, counter] = np.where(closed, math.inf, ends)
        self.hole_hi[rows, counter] = np.where(closed, math.inf, due)
        self.hole_column[rows, counter] = np.where(closed, -1, columns)

    def _share(self, one: int, other: int) -> bool:
        """Whether some counter serves both services."""
        if (one, other) not in self.shared:
            self.shared[one, other] = one == other or bool(
                set(self.capable_of(one).tolist()) & set(self.capable_of(other).tolist()))
        return self.shared[one, other]

    def _callable_at(self, service_id: int, rows: np.ndarray, due: np.ndarray) -> np.ndarray:
        """(rows, capable counters): when each could call a ticket of the service due at `due`
        (per row), within its shifts (a counter free before a break takes it after the break)."""
        capable = self.capable_of(service_id)
        free = self.free[rows]
        if len(capable) < free.shape[1]:
            free = free[:, capable]
        pushed = due[:, None] > free
        if not pushed.any():  # free times are within a shift already
            return free
        times = np.where(pushed, due[:, None], free)
        if service_id not in self.shifted_of:
            self.shifted_of[service_id] = [(column, index) for column, index in enumerate(capable.tolist())
                                           if index in self.shifted]
        for column, index in self.shifted_of[service_id]:
            # A free time is within a shift already; only a later due time may fall outside one.
            last_start, last_end = self.state.counters[index].windows[-1]
            late = pushed[:, column] & (times[:, column] >= self.first_end[index]) & (
                (times[:, column] < last_start) | (times[:, column] >= last_end))
            if late.any():
                times[late, column] = _into_windows(times[late, column], self.state.counters[index].windows)
        return times

    def _place(self, booking: _Booked, due: np.ndarray, ready: np.ndarray) -> None:
        """Place the booking in the rows `ready` (usually few: worked on those rows alone)."""
        rows = np.flatnonzero(ready)
        capable = self.capable_of(booking.service_id)
        if len(capable):
            times = self._callable_at(booking.service_id, rows, due[rows])
            pick = np.argmin(times, axis=1)
            start, counter = times[np.arange(len(rows)), pick], capable[pick]
        else:
            start, counter = np.full(len(rows), math.inf), np.zeros(len(rows), dtype=int)
        if booking.column is not None:
            column = self.columns[booking.column].copy()
            column[rows] = start
            self.columns[booking.column] = column
        placed = np.isfinite(start)
        rows, start, counter = rows[placed], start[placed], counter[placed]
        free = self.free[rows, counter]
        opens = free < start
        if self.holes:
            holed = np.isfinite(self.hole_lo[rows, counter])
            if holed.any():  # one more behind the booking of the hole: that one is not moved earlier
                self.hole_arrival[rows[holed], counter[holed]] = self.hole_hi[rows[holed], counter[holed]]
                opens &= ~holed
        if opens.any():
            where, at = rows[opens], counter[opens]
            self.hole_lo[where, at], self.hole_hi[where, at] = free[opens], start[opens]
            self.hole_arrival[where, at] = booking.arrival[where]
            self.hole_column[where, at] = -1 if booking.column is None else booking.column
            self.holes = True
        if len(rows):
            visit = self._sample(booking.service_id, booking.visit[rows])
            ends = start + visit * self.speed[counter] + self.gap[counter]
            self.free[rows, counter] = self._into_shifts(counter, ends)
        booking.done = booking.done | ready
        if booking.done.all():
            self.bookings = [b for b in self.bookings if b is not booking]

    def _admit_bookings(self, service_id: int, earliest: tuple | None = None) -> bool:
        """Bookings due (booked start reached and arrived) by the time the next ticket of
        `service_id` would be called go first, by start, as call_next would take them. Returns
        whether any was placed (`earliest`: the service's _earliest, when the caller has it)."""
        changed, placed = True, False
        while changed and self.bookings:
            changed = False
            next_call = (earliest if earliest is not None and not placed else self._earliest(service_id))[0]
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
                    changed = placed = True
        return placed

    def _close_holes(self) -> None:
        """No walk-in left: a booking behind a hole is called as soon as its counter is idle and
        it is there, before its start if need be (a counter does not stand idle)."""
        if not self.holes:
            return
        rows, counters = np.nonzero(np.isfinite(self.hole_lo))
        due = self.hole_hi[rows, counters]
        called = np.minimum(due, np.maximum(self.hole_lo[rows, counters], self.hole_arrival[rows, counters]))
        self.free[rows, counters] -= due - called
        columns = self.hole_column[rows, counters]
        for column in np.unique(columns[columns >= 0]).tolist():
            mine = columns == column
            calls = self.columns[column].copy()
            calls[rows[mine]] = called[mine]
            self.columns[column] = calls
        self.hole_lo[rows, counters] = self.hole_hi[rows, counters] = math.inf
        self.hole_column[rows, counters] = -1
        self.holes = False

    def _idle_fallback(self) -> None:
        """Checked-in bookings left when no walk-in waits: called as soon as a counter is free,
        before their start if need be (a counter does not stand idle)."""
        for booking in [b for b in self.bookings if b.column is not None]:
            self._place(booking, booking.arrival, ~booking.done)

    def step(self, column: int, ticket: WaitingNow, joined: float = 0.0, draws: tuple | None = None) -> None:
        """Play one walk-in, behind everyone played so far. `joined`: minutes after the run's
        `now` at which it joined (a played queue extended later); it is not called before.
        `draws`: its (visit, patience) uniforms when the caller drew them for many at once."""
        visit, patience = draws or (None, None)
        earliest = self._earliest(ticket.service_id)
        if self.bookings and self._admit_bookings(ticket.service_id, earliest):
            earliest = self._earliest(ticket.service_id)
        start, counter = earliest
        if joined > 0:
            start = np.maximum(start, joined)
        self.columns[column] = start
        finite = np.isfinite(start)
        rate = self.learned.patience_rate
        if ticket.away:  # at home, nobody gives up in the lobby; not there when called, held
            if visit is None:
                visit = self.draws.uniform(VISIT, ticket.id)
            here = self._remote_called(ticket, start, finite, joined, visit)
            self._occupy(counter, start, ticket.service_id, finite & here, visit)
        elif rate > 0:
            if patience is None:
                patience = self.draws.uniform(PATIENCE, ticket.id)
            stays = -np.log1p(-patience) / rate >= start - joined
        else:
            stays = finite
        if not ticket.away:
            if visit is None:
                visit = self.draws.uniform(VISIT, ticket.id)
            self._occupy(counter, start, ticket.service_id, finite & stays, visit)
        self.line_end = (ticket.sort_key, ticket.id)
        self.walk_ins[ticket.service_id] = self.walk_ins.get(ticket.service_id, 0) + 1

    def _remote_arrival(self, ticket: WaitingNow, start: np.ndarray, joined: float) -> np.ndarray:
        """When a remote ticket's holder arrives, minutes from now (inf: never): after "Time to set
        off" (already sent, or due when the low end of its call falls to the trip plus the margin),
        the trip and a learned lateness; one who should be here by now arrives later than that."""
        lateness, no_come = self.learned.remote_lateness, self.learned.remote_no_come
        if ticket.set_off is None:
            finite = start[np.isfinite(start)]
            low = float(np.quantile(finite, RANGE[0])) if len(finite) else math.inf
            told = max(joined, low - ticket.travel - self.state.set_off_margin)
            comes = 1 - no_come
        else:
            told = ticket.set_off
            # Not here yet: only the later arrivals are still possible (as for bookings).
            later = lateness[lateness > -(told + ticket.travel)]
            share = len(later) / len(lateness) if len(lateness) else 0.0
            absent = no_come + (1 - no_come) * share
            comes = (1 - no_come) * share / absent if absent > 0 else 0.0
            lateness = later
        if not len(lateness) or comes <= 0:
            return np.full(self.n, math.inf)
        when = told + ticket.travel + pick(np.sort(lateness), self.draws.uniform(REMOTE_ARRIVES, ticket.id))
        return np.where(self.draws.uniform(REMOTE_COMES, ticket.id) < comes, np.maximum(when, joined), math.inf)

    def _remote_called(self, ticket: WaitingNow, start: np.ndarray, finite: np.ndarray, joined: float,
                       visit: np.ndarray) -> np.ndarray:
        """Per replication, whether a remote ticket's holder is there at its call. Where not, its
        counter goes on to the next ticket; held for the first time, the ticket comes back after
        the branch's held places (that many visits' worth of its counters' time) and is served
        then if its holder has arrived, as a booking due then would be; otherwise a no-show."""
        arrival = self._remote_arrival(ticket, start, joined)
        here = arrival <= start
        late = finite & ~here
        if ticket.held or not late.any() or self.state.held_places <= 0:
            return here
        capable = self.capable_of(ticket.service_id)
        mean = self.learned.service_means.get(ticket.service_id, 10.0) * float(self.speed[capable].mean())
        back = start + self.state.held_places * mean / max(1, len(capable))
        comes_back = late & (arrival <= back)
        if comes_back.any():
            due = float(back[comes_back].min())
            again = _Booked(ticket.service_id, self.state.now + timedelta(minutes=due), due,
                            np.where(comes_back, back, math.inf), ~comes_back, visit)
            # In start order, as _admit_bookings expects; no column: its own figures stay its turn.
            self.bookings = sorted([*self.bookings, again], key=lambda b: (b.start_at, b.column is None))
        return here

    def play(self, pace: Callable[[], None] | None = None) -> "_Queue":
        """Every walk-in waiting now, in line order; bookings as they fall due. `pace` is called
        between steps (a background run taking turns with requests, core/request_line.py)."""
        line = [(column, ticket) for column, ticket in enumerate(self.state.waiting) if not ticket.booked]
        # Drawn a block at a time (each ticket's draws are its own, so the blocks do not change them):
        # a paced run's turns stay short however long the line.
        for first in range(0, len(line), DRAW_BLOCK):
            block = line[first:first + DRAW_BLOCK]
            ids = [ticket.id for _, ticket in block]
            visits, patience = self.draws.uniforms(VISIT, ids), self.draws.uniforms(PATIENCE, ids)
            for row, (column, ticket) in enumerate(block):
                self.step(column, ticket, draws=(visits[row], patience[row]))
                if pace is not None:
                    pace()
        return self

    def extend(self, ticket: WaitingNow, joined: float = 0.0) -> int:
        """A walk-in that joins behind everyone played; returns its column."""
        self.state.waiting.append(ticket)
        self.columns.append(self.never)
        self.step(len(self.columns) - 1, ticket, joined)
        return len(self.columns) - 1

    def settled(self) -> "_Queue":
        """A copy with the idle fallback played: every ticket's call time is final."""
        done = self.copy()
        done._close_holes()
        done._idle_fallback()
        return done

    def call_matrix(self) -> np.ndarray:
        if not self.columns:
            return np.zeros((self.n, 0))
        return np.column_stack(self.columns)

    def run(self) -> Replications:
        done = self.play().settled()
        return Replications(done.call_matrix(), done.free, self.state)

    def next_ticket(self, service_id: int) -> np.ndarray:
        """Call times of a ticket taken now for a service, behind everyone (the display's figure)."""
        if self.bookings:
            self._admit_bookings(service_id)
        return self._earliest(service_id)[0]


def _summaries(calls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column (ticket): the share of replications with a call today, and the mean and
    10th/90th percentiles of the call time among them."""
    # Column-major: each column is summed alone, in the same order whether it stands alone (one
    # new ticket) or among the others (a full run), so the two agree to the last bit.
    calls = np.asfortranarray(calls)
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
               closed: bool, calibration: Calibration | None = None) -> Estimate:
    """One ticket's estimate from its column of _summaries, corrected by the branch's calibration
    (estimate_calibration.py; None for booked visits, whose wait is their booked start's).

    "no_counter" when no counter serves the service right now: with opens_at (and the minutes,
    counted from then on) when one opens later today, without when none does.
    """
    if closed:
        return Estimate("closed")
    waiting_for_counter = service_id in state.opens_at
    opens_at = state.opens_at.get(service_id)
    if share < 0.5:
        return Estimate("no_counter", opens_at=opens_at)
    model = (max(0.0, float(mean)), max(0.0, float(low)), max(0.0, float(high)))
    mean, low, high = calibration.apply(*model) if calibration is not None else model
    return Estimate("no_counter" if waiting_for_counter else "waiting", minutes=max(0, round(mean)),
                    low=max(0, round(low)), high=max(0, round(high)), opens_at=opens_at, mean=float(mean),
                    model=model)


def _calibration(queue: "_Queue", ticket: WaitingNow | None) -> Calibration | None:
    return queue.learned.calibration if ticket is None or not ticket.booked else None


@dataclass
class BranchEstimates:
    tickets: dict[int, Estimate]  # waiting tickets: minutes from now until called
    new_ticket: dict[int, Estimate]  # per service: a ticket taken now
    ahead: dict[int, int]  # people ahead of each waiting ticket (queue_order.ahead_counts)


def _is_closed(state: BranchNow) -> bool:
    return not any(c.windows for c in state.counters)


def sharing_services(state: BranchNow) -> Callable[[int], set[int]]:
    """The services sharing a counter with a service (itself included), for queue_order.ahead_counts."""
    shared: dict[int, set[int]] = {}

    def sharing(service_id: int) -> set[int]:
        if service_id not in shared:
            shared[service_id] = {s for c in state.counters if service_id in c.service_ids
                                  for s in c.service_ids} | {service_id}
        return shared[service_id]

    return sharing


def estimate_of(queue: _Queue, column: int, service_id: int, later: float = 0.0) -> Estimate:
    """One ticket's estimate from its column of a played queue, `later` minutes after the run."""
    calls = queue.columns[column][:, None] - later
    share, mean, low, high = (v[0] for v in _summaries(calls))
    return _summarise(share, mean, low, high, service_id, queue.state, _is_closed(queue.state),
                      _calibration(queue, queue.state.waiting[column]))


def play_branch(session: Session, branch: Branch, now: datetime, *, replications: int = REPLICATIONS,
                seed: int | None = None, learned: Learned | None = None,
                pace: Callable[[], None] | None = None) -> _Queue:
    """A full run: the branch's state now, every walk-in played (see _Queue.play). A run with
    `pace` takes turns in the request line, which orders it with the requests instead of _playing."""
    learned = learned or learned_for(session, branch, now)
    state = branch_now(session, branch, now, learned, pace)
    if pace is not None:
        return _Queue(state, learned, replications, salt=seed or 0).play(pace)
    with _playing:
        return _Queue(state, learned, replications, salt=seed or 0).play()


def summarise(queue: _Queue, branch: Branch, *, per_service: bool = True, later: float = 0.0) -> BranchEstimates:
    """Estimates from a played queue, `later` minutes after its run's `now` (0: at that moment)."""
    state = queue.state
    closed = _is_closed(state)
    with _playing:
        done = queue.settled()
        tickets = {}
        if state.waiting:
            shares, means, lows, highs = _summaries(np.maximum(done.call_matrix() - later, 0.0))
            for column, ticket in enumerate(state.waiting):
                tickets[ticket.id] = _summarise(shares[column], means[column], lows[column], highs[column],
                                                ticket.service_id, state, closed, _calibration(queue, ticket))
        new_ticket = {}
        for service in branch.services if per_service else []:
            if not service.active:
                continue
            calls = np.maximum(done.next_ticket(service.id), later) - later
            share, mean, low, high = (v[0] for v in _summaries(calls[:, None]))
            new_ticket[service.id] = _summarise(share, mean, low, high, service.id, state, closed,
                                                _calibration(queue, None))
    # People ahead, queue_order.py; judged at the run's now.
    ahead = queue_order.ahead_counts(state.waiting, sharing_services(state), state.now)
    return BranchEstimates(tickets, new_ticket, ahead)


def estimate_branch(session: Session, branch: Branch, now: datetime | None = None, *,
                    replications: int = REPLICATIONS, seed: int | None = None,
                    learned: Learned | None = None, per_service: bool = True) -> BranchEstimates:
    """Estimates for every waiting ticket of the branch and, with `per_service`, for a ticket
    taken now in each service. `seed` salts every ticket's random draws (see _Draws); the same
    queue gives the same figures instead of jittering between pushes."""
    now = now or utcnow()
    queue = play_branch(session, branch, now, replications=replications, seed=seed, learned=learned)
    return summarise(queue, branch, per_service=per_service)


def estimate_ticket(session: Session, ticket: Ticket, now: datetime | None = None) -> Estimate:
    """A waiting ticket's estimate: minutes from now until it is called."""
    if ticket.status != "waiting":
        return NOT_WAITING
    return estimate_branch(session, ticket.branch, now).tickets.get(ticket.id, NOT_WAITING)
