"""Lobby traffic for `queue-app demo`: walk-ins arrive, some give up, counters call, serve and finish.

It drives the same domain functions as kiosks, phones and staff, so the display, the estimates,
the dashboard and the API move as they would in a branch. Its figures are real-time ones, so the
demo looks like a branch at any hour:
- walk-ins arrive (Poisson) at the rate that keeps the open simulated counters TARGET_UTILISATION
  busy, from the number of those counters and the services' visit lengths; faster while fewer
  than QUEUE_FLOOR wait and slower while more than QUEUE_CEILING do, so the lobby keeps a handful
  to about twenty people waiting;
- visits last real minutes, drawn as the demo history draws them (the service's expected minutes,
  lognormal), so the estimates the product learned from that history come true;
- a walk-in gives up after a patience time (queueing.leave: the product's abandonment) and a few
  called people never come (queueing.no_show);
- Counter 1 is simulated too until a person works it from the staff console (HUMAN_COUNTER).
`DemoTraffic.step(session, now)` takes the clock as an argument, so tests play an hour in seconds.
"""
import random
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import WEEKDAYS, Counter, CounterService, Service
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.demo.customers import returning_phone
from queue_app.demo.history import VISIT_CV, WALK_IN_SHARES
from queue_app.demo.scenarios import ServiceSpec
from queue_app.tickets import numbering, queueing
from queue_app.tickets.models import Ticket, TicketEvent

# Served by the simulation until a person works it from the staff console (any call, start,
# finish or no-show there by a signed-in member of staff); theirs while they did so in the last
# HUMAN_IDLE. Simulated rather than left idle: an open counter nobody serves would make every
# wait estimate too short.
HUMAN_COUNTER = "Counter 1"
HUMAN_IDLE = timedelta(hours=1)
TARGET_UTILISATION = 0.9
QUEUE_FLOOR, QUEUE_CEILING = 8, 20
# Nobody leaves in their first 10 minutes; after that, exponentially (most waits stay short of it).
PATIENCE_MIN_MINUTES, PATIENCE_MEAN_MINUTES = 10.0, 60.0
NO_SHOW_SHARE = 0.03
WALK_TO_COUNTER = timedelta(seconds=20)  # from the call to the visit starting


def open_around_the_clock(session: Session, branch_slug: str) -> None:
    """The demo branch never closes and takes bookings 10 minutes ahead, so booking, the reminder
    mail, kiosk check-in and the call can all be tried at any hour."""
    catalogue.update_branch(session, branch_slug, opening_hours={d: [["00:00", "24:00"]] for d in WEEKDAYS},
                            booking_rules={"min_notice_minutes": 10})


class DemoTraffic:
    def __init__(self, branch_slug: str, seed: int | None = None):
        self.slug = branch_slug
        self.rng = random.Random(seed)
        self.next_arrival: datetime | None = None
        self.gives_up_at: dict[int, datetime] = {}  # walk-ins issued here -> when they leave
        self.visit_ends_at: dict[int, datetime] = {}
        self.counts = {"issued": 0, "served": 0, "gave_up": 0, "no_show": 0}

    # --- what the lobby looks like ------------------------------------------------------------------
    def _counters(self, session: Session, branch_id: int, at: datetime) -> list[Counter]:
        """The open counters the simulation serves."""
        counters = session.scalars(select(Counter).where(
            Counter.branch_id == branch_id, Counter.state == "open").order_by(Counter.name)).all()
        return [c for c in counters if c.name != HUMAN_COUNTER or not self.human_at_work(session, c.id, at)]

    def human_at_work(self, session: Session, counter_id: int, at: datetime) -> bool:
        return session.scalar(select(TicketEvent.id).where(
            TicketEvent.counter_id == counter_id, TicketEvent.staff_id.is_not(None),
            TicketEvent.at >= at - HUMAN_IDLE).limit(1)) is not None

    def _services(self, session: Session, counters: list[Counter]) -> list[Service]:
        """Active walk-in services at least one open simulated counter serves."""
        if not counters:
            return []
        served = select(CounterService.service_id).where(CounterService.counter_id.in_([c.id for c in counters]))
        return session.scalars(select(Service).where(
            Service.id.in_(served), Service.active.is_(True), Service.walk_in_enabled.is_(True)
        ).order_by(Service.code)).all()

    def waiting(self, session: Session, branch_id: int, day) -> int:
        return session.scalar(select(func.count(Ticket.id)).where(
            Ticket.branch_id == branch_id, Ticket.local_date == day, Ticket.status == "waiting")) or 0

    def arrivals_per_minute(self, counters: list[Counter], services: list[Service], waiting: int) -> float:
        """Walk-ins per minute that keep the open simulated counters TARGET_UTILISATION busy."""
        if not counters or not services:
            return 0.0
        weights = [WALK_IN_SHARES.get(s.code, 0.1) for s in services]
        mean_visit = sum(w * s.expected_minutes for w, s in zip(weights, services)) / sum(weights)
        rate = TARGET_UTILISATION * len(counters) / mean_visit
        # Chance alone lets a queue at 90 % drift from empty to long: lean against it, harder the
        # emptier the lobby (an empty one refills in minutes, not in an hour).
        if waiting < QUEUE_FLOOR:
            rate *= 1 + 1.5 * (QUEUE_FLOOR - waiting) / QUEUE_FLOOR
        elif waiting > QUEUE_CEILING:
            rate *= 0.4
        return rate

    # --- what customers do ----------------------------------------------------------------------------
    def walk_in(self, session: Session, services: list[Service], now: datetime | None,
                patience: bool = True) -> queueing.IssuedTicket:
        service = self.rng.choices(services, weights=[WALK_IN_SHARES.get(s.code, 0.1) for s in services])[0]
        priority = "accessibility" if self.rng.random() < 0.08 else "normal"
        # Some arrivals are the seeded returning customers, so the counter shows their history.
        issued = queueing.issue_ticket(session, self.slug, service.code, priority=priority,
                                       phone=returning_phone(self.rng), issued_by="kiosk", now=now)
        self.counts["issued"] += 1
        if patience:
            self.gives_up_at[issued.ticket.id] = issued.ticket.issued_at + timedelta(minutes=self.patience_minutes())
        return issued

    def patience_minutes(self) -> float:
        extra = PATIENCE_MEAN_MINUTES - PATIENCE_MIN_MINUTES
        return PATIENCE_MIN_MINUTES + self.rng.expovariate(1 / extra)

    def fill_queue(self, session: Session, now: datetime | None = None, size: int = QUEUE_FLOOR) -> int:
        """Walk-ins until `size` people wait (a lobby already in full swing when the demo starts)."""
        at = now or utcnow()
        branch = catalogue.get_branch(session, self.slug)
        day = numbering.local_day(at, branch.zone)
        services = self._services(session, self._counters(session, branch.id, at))
        added = 0
        while services and self.waiting(session, branch.id, day) < size:
            self.walk_in(session, services, now)
            added += 1
        session.commit()
        return added

    # --- one step of the clock ------------------------------------------------------------------------
    def step(self, session: Session, now: datetime | None = None) -> None:
        """Everything due by `now` (None: the real clock, read by each domain function)."""
        at = now or utcnow()
        branch = catalogue.get_branch(session, self.slug)
        day = numbering.local_day(at, branch.zone)
        counters = self._counters(session, branch.id, at)
        services = self._services(session, counters)
        waiting = self.waiting(session, branch.id, day)
        session.commit()  # end the read transaction before writing
        rate = self.arrivals_per_minute(counters, services, waiting)
        if self.next_arrival is None or rate <= 0 or self.next_arrival < at - timedelta(minutes=2):
            # (Also after a pause, e.g. a laptop asleep: no burst of the walk-ins it would have missed.)
            self.next_arrival = at + timedelta(minutes=self.rng.expovariate(rate)) if rate > 0 else None
        while self.next_arrival is not None and self.next_arrival <= at:
            self.walk_in(session, services, now)
            waiting += 1
            rate = self.arrivals_per_minute(counters, services, waiting)
            self.next_arrival += timedelta(minutes=self.rng.expovariate(rate))
        self._give_up(session, at, now)
        for counter in counters:
            self._counter(session, counter.id, at, now)
            session.commit()

    def _give_up(self, session: Session, at: datetime, now: datetime | None) -> None:
        due = [i for i, when in self.gives_up_at.items() if when <= at]
        for ticket_id in due:
            del self.gives_up_at[ticket_id]
            status = session.scalar(select(Ticket.status).where(Ticket.id == ticket_id))
            session.commit()
            if status == "waiting":
                queueing.leave(session, ticket_id, now=now)
                self.counts["gave_up"] += 1

    def _counter(self, session: Session, counter_id: int, at: datetime, now: datetime | None) -> None:
        current = session.scalar(
            select(Ticket).where(Ticket.counter_id == counter_id, Ticket.status.in_(("called", "serving"))))
        if current is not None and current.status == "called":
            if at - current.called_at < WALK_TO_COUNTER:
                return
            self.gives_up_at.pop(current.id, None)
            if self.rng.random() < NO_SHOW_SHARE:
                queueing.no_show(session, current.id, now=now)
                self.counts["no_show"] += 1
                current = None
            else:
                queueing.start(session, current.id, now=now)
        if current is not None:  # serving
            ends = self.visit_ends_at.get(current.id)
            if ends is None:  # started here, or before a restart of the demo: draw its length now
                spec = ServiceSpec("", "", float(current.service.expected_minutes), VISIT_CV, "lognormal", 0, 0)
                ends = self.visit_ends_at[current.id] = current.started_at + timedelta(minutes=spec.draw(self.rng))
            if ends > at:
                return
            del self.visit_ends_at[current.id]
            queueing.finish(session, current.id, now=now)
            self.counts["served"] += 1
        called = queueing.call_next(session, counter_id, now=now)
        if called is not None:
            self.gives_up_at.pop(called.id, None)


def start_demo_traffic(app, traffic: DemoTraffic, interval: float = 3.0,
                       stop: threading.Event | None = None) -> threading.Thread:
    """A step every `interval` seconds on the real clock, until `stop` is set (tests) or the process ends."""
    stop = stop or threading.Event()

    def loop():
        with app.app_context():
            while not stop.is_set():
                with Session(db.engine) as session:
                    try:
                        traffic.step(session)
                    except DomainError as refusal:  # e.g. a person at the staff console got there first
                        session.rollback()
                        app.logger.info("demo traffic: %s", refusal.message)
                    except Exception:  # keep the lobby moving; the next step starts afresh
                        session.rollback()
                        app.logger.exception("demo traffic step failed")
                stop.wait(interval)

    thread = threading.Thread(target=loop, name="demo-traffic", daemon=True)
    thread.start()
    return thread
