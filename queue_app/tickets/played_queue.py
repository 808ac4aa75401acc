"""The played queue: the end state of the last full estimator run, per branch and database.

A full run of the estimator (estimates.py) plays every waiting ticket forward and costs
milliseconds per waiting ticket. A new walk-in joins behind everyone, so its wait is one more
step on top of the last run's end state, whatever the length of the line. This module keeps
that end state in process memory and extends it:

- **Issuing** (queueing.issue_ticket) estimates the new ticket inside its own transaction from
  the played queue: the tickets that joined since the run (other threads, other processes) are
  picked up by id in one query and played first, then the new one. Each ticket's random draws
  come from its own stream (estimate_draws.TicketDraws), so the extended queue equals a full run of the
  longer queue at the same moment (tests/tickets/test_played_queue.py holds them equal).
- **Bounded staleness.** Calls, finishes, transfers, counter changes, check-ins, priority
  credits and the passing of time all change the play in ways one more step cannot. The played
  queue keeps serving for at most MAX_AGE_S after its run; once it is REFRESH_AFTER_S old, or
  REORDERED_AFTER_S old after something other than a walk-in joining at the end was committed in
  this process, one full run per branch is replayed on a background thread while the old one
  serves: a call made here shows in new tickets' estimates within about half a second. A long
  line's replays are spaced by their own cost (REPLAY_COST_SHARE), and its played queue serves
  for twice that spacing. Past that age, on a new local day, or when the learned parameters
  changed, the issuing request plays a full run itself (after its transaction, as before). Calls
  made by other processes are seen at the next replay.
- **Explicit clocks** (tests, the branch simulator) get no staleness at all: a played queue
  serves a request with an explicit `now` only at exactly its run's moment and only while nothing
  but walk-ins joined, so their figures are those of a full run; the simulator's quiet sessions
  (which announce nothing) always play in full.
"""
import logging
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.core import request_line
from queue_app.core.events import QUIET_KEY, QueueChange
from queue_app.core.models import utcnow
from queue_app.tickets import estimates, numbering, queue_order
from queue_app.tickets.estimate_learning import MINUTE, learned_for
from queue_app.tickets.estimate_state import WAITING_TODAY, waiting_now
from queue_app.tickets.models import Ticket

# A full run costs about 0.1 ms per waiting ticket (50 ms at 400): replays are spaced so that a
# long line does not spend the server's CPU replaying itself.
MAX_AGE_S = 2.0  # a played queue serves live requests this long after its run (longer for long lines, below)
REFRESH_AFTER_S = 1.0  # replayed in the background once this old,
REORDERED_AFTER_S = 0.5  # or this old when reordered: at most two full runs a second per branch,
REPLAY_COST_SHARE = 20  # and no sooner than twenty times the last run's CPU time (5 % of a core)
CAUGHT_UP = 8  # a replay's catch-up ends when a pass finds no more than this many new tickets
REPLAY_GRACE_S = 30.0  # at most this old while a replay is on its way
FORGET_AFTER_S = 60.0  # kept queues of branches without a run for this long are dropped
log = logging.getLogger(__name__)
# Waiting tickets that joined after the run (built once; plain Core on the connection: hot path).
_JOINED_SINCE = WAITING_TODAY.where(Ticket.id > bindparam("last_id"))


@dataclass(eq=False)
class PlayedQueue:
    branch_id: int
    day: date
    built_at: datetime  # the run's `now`
    queue: "estimates._Queue"
    last_id: int  # the highest waiting ticket id played; newer ones are picked up by id
    cost_s: float = 0.0  # CPU seconds the run took
    wall_s: float = 0.0  # seconds from its start until kept (longer than cost_s when it took turns)
    reordered: bool = False  # something other than a walk-in joining at the end, committed since
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The walk-ins played and still waiting as far as this process knows, and per service those
    # played who have since been called or left: people ahead of a new ticket are counted without
    # them at once, not at the next replay.
    walk_in_ids: set[int] = field(default_factory=set)
    left: dict[int, int] = field(default_factory=dict)

    def __post_init__(self):
        self.walk_in_ids.update(w.id for w in self.queue.state.waiting if not w.booked)

    def age_s(self, now: datetime) -> float:
        return (now - self.built_at).total_seconds()

    def serves_for_s(self) -> float:
        """How long after its run it serves live requests: MAX_AGE_S, or twice the spacing of a
        long line's replays and the time a replay takes, so that the next replay lands before the
        kept one runs out (a replay taking turns with a busy line of requests takes seconds)."""
        return max(MAX_AGE_S, 2 * (REPLAY_COST_SHARE * self.cost_s + self.wall_s))


# Per engine (database), then per branch id. Weak keys: a disposed app's engine takes its queues along.
_played: "weakref.WeakKeyDictionary[Engine, dict[int, PlayedQueue]]" = weakref.WeakKeyDictionary()
# (id(engine), branch id) with a background run in flight -> what changed meanwhile (on_changes):
# (ticket id, service id) of a ticket that left the line, (None, None) for any other reorder.
_replaying: dict[tuple[int, int], list[tuple[int | None, int | None]]] = {}
_registry = threading.Lock()
# (id(engine), branch id) -> held while a live request plays the branch's full run: the others that
# cannot be served wait for it and are served from what it kept (one_full_run).
_full_runs: dict[tuple[int, int], threading.Lock] = {}


def _flight_key(engine: Engine, branch_id: int) -> tuple[int, int]:
    return id(engine), branch_id


def _engine(session: Session) -> Engine:
    return session.get_bind()


def played_for(session: Session, branch_id: int) -> PlayedQueue | None:
    with _registry:
        return _played.get(_engine(session), {}).get(branch_id)


def drop(engine: Engine, branch_id: int) -> None:
    """Drop one branch's kept queue (it played a ticket whose transaction then rolled back)."""
    with _registry:
        _played.get(engine, {}).pop(branch_id, None)


def forget(engine: Engine | None = None) -> None:
    """Drop kept queues (of one database, or all): tests that rewrite history between runs."""
    with _registry:
        if engine is None:
            _played.clear()
        else:
            _played.pop(engine, None)


def play(session: Session, branch: Branch, now: datetime, pace: request_line.Paced | None = None,
         in_flight: list[tuple[int | None, int | None]] | None = None) -> PlayedQueue:
    """A full run, kept as the branch's played queue (replacing an older one, never a newer one).
    A background replay passes `pace` (its turns in the request line, core/request_line.py) and
    `in_flight` (who left meanwhile); its run takes seconds when the line is busy, so before it is
    kept it takes in the tickets issued meanwhile and counts out those who left, as a request
    would have done to the kept queue (otherwise the next issue would play hundreds at once)."""
    branch_id = branch.id  # the catch-up below ends the session's transaction
    learned = learned_for(session, branch, now)  # learning (daily, cached) is not what a replay costs
    cpu = (lambda: pace.cpu_s) if pace is not None else time.thread_time  # a paced run's own turns
    began, began_wall = cpu(), time.monotonic()
    queue = estimates.play_branch(session, branch, now, learned=learned, pace=pace)
    played = PlayedQueue(branch_id, numbering.local_day(now, branch.zone), now, queue,
                         max((w.id for w in queue.state.waiting), default=0),
                         cost_s=cpu() - began, wall_s=time.monotonic() - began_wall)
    if pace is not None:
        _catch_up(session, played, pace)
        played.cost_s, played.wall_s = cpu() - began, time.monotonic() - began_wall
    with _registry:
        for ticket_id, service_id in in_flight or ():
            played.reordered = True
            if ticket_id is not None:
                _count_out(played, ticket_id, service_id)
        kept = _played.setdefault(_engine(session), {})
        current = kept.get(branch_id)
        if current is None or current.built_at <= now:
            kept[branch_id] = played
        # A queue this old never serves again; it holds a few KB per waiting ticket, so quiet
        # branches do not keep theirs.
        for quiet in [b for b, other in kept.items() if other.age_s(now) > FORGET_AFTER_S]:
            del kept[quiet]
    return played


def _serves(played: PlayedQueue | None, branch: Branch, session: Session, now: datetime, live: bool) -> bool:
    if played is None:
        return False
    age = played.age_s(now)
    if live:
        # While its replay is on its way (taking turns with a busy line of requests, it can take
        # seconds), the kept queue goes on serving rather than every issue playing a full run.
        fresh = 0 <= age <= played.serves_for_s() or (
            0 <= age <= REPLAY_GRACE_S and _flight_key(_engine(session), branch.id) in _replaying)
    else:  # an explicit clock: only the very moment of the run, and only for walk-ins joining
        # (a quiet session, the simulator's, announces nothing, so its reorders are unseen)
        fresh = age == 0 and not played.reordered and not session.info.get(QUIET_KEY)
    return (fresh and played.day == numbering.local_day(now, branch.zone)
            and played.queue.learned is learned_for(session, branch, now))


def estimate_joined(session: Session, branch: Branch, ticket: Ticket, now: datetime, *,
                    live: bool) -> "estimates.BranchEstimates | None":
    """The new walk-in's estimate and people ahead from the played queue, inside the issuing
    transaction after the ticket's insert; None when the played queue cannot serve (none yet, too
    old, or the ticket goes before someone already played: a priority credit)."""
    played = played_for(session, branch.id)
    if not _serves(played, branch, session, now, live):
        return None
    with played.lock:
        queue = played.queue
        joined = max(0.0, played.age_s(now) / MINUTE)  # minutes after the run
        column = None
        for row in _joined_since(session, played):
            ticket_id, service_id = row[:2]
            if ticket_id == ticket.id:
                column = len(queue.columns)
                # People ahead (queue_order.py) of a walk-in at the end of the line: every walk-in
                # before it and the due bookings, on the services sharing a counter with its own.
                sharing = estimates.sharing_services(queue.state)(service_id)
                ahead = sum(queue.walk_ins.get(s, 0) - played.left.get(s, 0) for s in sharing) + \
                    _due_bookings(queue, sharing, now)
            if not _take_in(played, row, joined) and ticket_id == ticket.id:
                return None  # a check-in or a credit: a full run for it, a replay for the others
        if column is None:
            return None
        estimate = estimates.estimate_of(queue, column, ticket.service_id, joined)
    return estimates.BranchEstimates({ticket.id: estimate}, {}, {ticket.id: ahead})


@contextmanager
def one_full_run(engine: Engine, branch_id: int):
    """Held around a live request's full run of the branch (queueing.keep_estimate_at_issue): when
    no kept queue serves (a restart, a new day, new learned parameters, a replay far overdue),
    every kiosk issuing at that moment would otherwise play the whole line itself, one after the
    other; with it they wait for the first, then are served from the queue it kept."""
    with _registry:
        lock = _full_runs.setdefault(_flight_key(engine, branch_id), threading.Lock())
    with lock:
        yield


def estimate_kept(session: Session, branch: Branch, ticket: Ticket, now: datetime) -> "estimates.BranchEstimates | None":
    """A live walk-in's estimate from a kept queue played after its insert committed (by a request
    it waited for in one_full_run): its own column when that run played it, else it is picked up
    as estimate_joined does. None when the kept queue cannot serve, or for a checked-in booking
    (its place comes from the run's settled play: a full run)."""
    played = played_for(session, branch.id)
    if queue_order.is_booked(ticket.priority) or not _serves(played, branch, session, now, live=True):
        return None
    with played.lock:
        queue = played.queue
        column = next((c for c, w in enumerate(queue.state.waiting) if w.id == ticket.id), None)
        if column is not None:
            later = max(0.0, played.age_s(now) / MINUTE)
            estimate = estimates.estimate_of(queue, column, ticket.service_id, later)
            # People ahead (queue_order.py): the walk-ins before it still waiting as far as this
            # process knows, and the due bookings, on the services sharing a counter with its own.
            sharing = estimates.sharing_services(queue.state)(ticket.service_id)
            ahead = sum(1 for w in queue.state.waiting[:column]
                        if w.service_id in sharing and w.id in played.walk_in_ids) + _due_bookings(queue, sharing, now)
            return estimates.BranchEstimates({ticket.id: estimate}, {}, {ticket.id: ahead})
    return estimate_joined(session, branch, ticket, now, live=True)


def _due_bookings(queue: "estimates._Queue", sharing: set[int], now: datetime) -> int:
    """Checked-in bookings due by `now` on the services sharing a counter: ahead of any walk-in."""
    return sum(1 for w in queue.booked if w.service_id in sharing and queue_order.is_due(w.start_at, now))


def _joined_since(session: Session, played: PlayedQueue) -> list:
    """Waiting tickets newer than the last one played (other threads, other processes)."""
    return session.connection().execute(
        _JOINED_SINCE, {"branch_id": played.branch_id, "today": played.day, "last_id": played.last_id}).all()


def _goes_at_the_end(played: PlayedQueue, row) -> bool:
    """Whether one more step places this ticket: a walk-in behind everyone played. A check-in or a
    credit goes before people already played; it is left out and the queue is marked for a replay."""
    ticket_id, _service_id, sort_key, priority = row[:4]
    line_end = played.queue.line_end
    if queue_order.is_booked(priority) or (line_end is not None and (sort_key, ticket_id) < line_end):
        played.reordered = True
        played.last_id = max(played.last_id, ticket_id)
        return False
    return True


def _take_in(played: PlayedQueue, row, joined: float) -> bool:
    """Play one picked-up ticket, `joined` minutes after the run, if it goes at the end; whether it did."""
    if not _goes_at_the_end(played, row):
        return False
    played.last_id = max(played.last_id, row[0])
    played.queue.extend(waiting_now(*row, played.queue.state.now), joined)
    played.walk_in_ids.add(row[0])
    return True


def _catch_up(session: Session, played: PlayedQueue, pace: Callable[[], None]) -> None:
    """A replay's tickets issued while it ran, taken in before it is kept (in its turns), pass
    after pass (more join during each) until a few are left for the next issue to take in, or
    until a pass finds no fewer than the last (kiosks issuing faster than its turns play them)."""
    found = None
    while True:
        session.rollback()  # a new snapshot: the run (or the last pass) read the line as it was
        rows = _joined_since(session, played)
        joined = max(0.0, (utcnow() - played.built_at).total_seconds() / MINUTE)
        for row in rows:
            _take_in(played, row, joined)
            pace()
        if len(rows) <= CAUGHT_UP or (found is not None and len(rows) >= found):
            return
        found = len(rows)


def _count_out(played: PlayedQueue, ticket_id: int, service_id: int) -> None:
    """A played walk-in called, gone or moved to another service: people ahead of later tickets
    are counted without it at once, not at the next replay."""
    if ticket_id in played.walk_in_ids:
        with played.lock:
            played.walk_in_ids.discard(ticket_id)
            played.left[service_id] = played.left.get(service_id, 0) + 1


def _replay_after(played: PlayedQueue) -> float:
    """Seconds after its run a played queue is replayed: REFRESH_AFTER_S, or REORDERED_AFTER_S
    after a reorder; in both cases no sooner than REPLAY_COST_SHARE times the run's own CPU time,
    so that replays of a long line take at most a twentieth of a core. A line of 400 (50 ms a run)
    is replayed every second; one of 2,000, where the next turn is hours away, every 4-5 s."""
    base = REORDERED_AFTER_S if played.reordered else REFRESH_AFTER_S
    return max(base, REPLAY_COST_SHARE * played.cost_s)


def refresh_if_due(engine: Engine, branch_id: int, now: datetime | None = None) -> None:
    """Start a background replay of the branch if its played queue is old or reordered (live
    requests only; one replay per branch at a time)."""
    now = now or utcnow()
    with _registry:
        played = _played.get(engine, {}).get(branch_id)
        if played is not None and played.age_s(now) < _replay_after(played):
            return
        key = _flight_key(engine, branch_id)
        if key in _replaying:
            return
        _replaying[key] = []
    threading.Thread(target=_replay, args=(engine, branch_id, key), name=f"replay-{branch_id}", daemon=True).start()


def _replay(engine: Engine, branch_id: int, key: tuple[int, int]) -> None:
    try:
        # In short turns of the request line: a long line's run costs 100 ms and more of CPU,
        # which would otherwise stall every request in flight while it runs.
        with Session(engine) as session, request_line.Paced(request_line.line) as pace:
            branch = session.get(Branch, branch_id)
            if branch is not None:
                play(session, branch, utcnow(), pace, in_flight=_replaying[key])
    except Exception:  # a failed replay leaves the old queue to age out; the next request plays itself
        log.exception("replaying the queue of branch %s failed", branch_id)
    finally:
        with _registry:
            _replaying.pop(key, None)


def wait_idle(timeout: float = 5.0) -> bool:
    """Until no background replay runs (graceful shutdown, tests); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _registry:
            if not _replaying:
                return True
        time.sleep(0.01)
    return False


def on_changes(changes: list[QueueChange], engine: Engine) -> None:
    """Events bus subscriber: a call, finish, transfer, counter change... reorders the play."""
    with _registry:
        kept = _played.get(engine, {})
        for change in changes:
            if change.type == "issued":
                continue  # picked up by id at the next issue, which sees whether it goes at the end
            played = kept.get(change.branch_id)
            in_flight = _replaying.get(_flight_key(engine, change.branch_id))
            if played is not None:
                played.reordered = True
            departure = (None, None)  # a reorder only
            if change.status != "waiting" or change.type == "transferred":
                departure = (change.ticket_id, change.data.get("from_service", change.service_id))
                if played is not None:
                    _count_out(played, *departure)
            if in_flight is not None:
                in_flight.append(departure)
