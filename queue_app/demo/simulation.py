"""The branch simulator: a discrete-event simulation of one branch driving the real product.

A scenario file (scenarios.py; ../shared/scenarios/README.md) describes the branch: hours,
services and their service-time distributions, the walk-in rate through the day, appointments with
no-shows and punctuality noise, counters with skills and shifts, walk-in patience, and customers
who join from home. The simulator draws
customers and visit lengths from it, and everything else is the product: tickets are issued,
bookings checked in, counters call, start and finish, and impatient customers leave, all through
the domain functions, against a real (SQLite) database, with the simulator's clock passed as
`now`. The wait estimate each ticket gets is the one the product stored when issuing it.

What the staff do is modelled simply: a counter on shift calls the next ticket as soon as it is
free (but not when everyone it could call joined from home and is not here yet); at the end of a
shift it finishes the visit in progress; counters whose shift ends at closing time serve everyone
who already has a ticket. Deterministic for a given seed.
"""
import heapq
import json
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.catalogue import hours
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import WEEKDAYS, Counter
from queue_app.core.errors import Conflict
from queue_app.core.events import QUIET_KEY
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.demo.scenarios import CounterSpec, Scenario, ScenarioError
from queue_app.planning import plan as planning
from queue_app.tickets import (
    estimate_learning,
    estimate_state,
    estimates,
    numbering,
    queue_order,
    queueing,
    remote,
)
from queue_app.tickets.models import Ticket

BRANCH_SLUG = "sim"
NO_SHOW_SWEEP = timedelta(minutes=15)
SET_OFF_SWEEP = timedelta(seconds=30)  # the product's "time to set off" job runs this often
SIMULATION_SECRET = "simulation"  # the app's secret key in simulate(): remote tickets' tracking tokens


# --- setting up the branch ---------------------------------------------------------------------------

def _hours(scenario: Scenario, spans: list[tuple[time, time]]) -> dict:
    days = WEEKDAYS[:5] if scenario.weekdays_only else WEEKDAYS
    return {day: [[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in spans] for day in days}


def create_branch(session: Session, scenario: Scenario):
    remote = {} if scenario.remote is None else {
        "allow_remote_tickets": True, "set_off_margin_minutes": scenario.remote.set_off_margin_minutes}
    catalogue.create_branch(session, BRANCH_SLUG, f"Simulated branch ({scenario.name})", scenario.timezone,
                            opening_hours=_hours(scenario, [(scenario.open, scenario.close)]), **remote)
    for spec in scenario.services:
        configured = spec.configured_minutes if spec.configured_minutes is not None else spec.mean_minutes
        catalogue.create_service(session, BRANCH_SLUG, spec.code, spec.name, expected_minutes=max(1, round(configured)))
    counters = {}
    for spec in scenario.counters:
        counter = catalogue.create_counter(session, BRANCH_SLUG, spec.name, spec.services, state="closed")
        with write_transaction(session):
            session.get(Counter, counter.id).shifts = _hours(scenario, spec.shifts)
        counters[spec.name] = counter.id
    return catalogue.get_branch(session, BRANCH_SLUG), counters


# --- running it ----------------------------------------------------------------------------------------

@dataclass
class CounterRun:
    id: int
    spec: CounterSpec
    on_shift: bool = False
    finishes_queue: bool = False  # past closing: serve who has a ticket, then close
    ticket_id: int | None = None
    handover_until: datetime | None = None  # after a visit: not calling before then


@dataclass
class DayStats:
    day: date
    tickets: int = 0
    served: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)


class BranchSimulation:
    def __init__(self, session: Session, scenario: Scenario, seed: int, report: Callable[[dict], None],
                 observer: Callable[["BranchSimulation", datetime, Ticket, dict], None] | None = None,
                 branch_slug: str | None = None, within_capacity: bool = False):
        """`branch_slug`: play the scenario in an existing branch (its services by code, its
        counters by name) instead of creating the simulated branch. `within_capacity`: bookings
        go through the product's slot capacity (plan_appointments); off by default so the
        benchmarks' scenarios keep their booked volume."""
        self.session, self.scenario, self.report, self.observer = session, scenario, report, observer
        self.within_capacity = within_capacity
        self.unbooked_walk_in = True  # a customer who found no time with room walks in instead
        self.history = False  # playing history days: not reported, bookings as wanted
        self.rng = random.Random(seed)
        if branch_slug is None:
            self.slug = BRANCH_SLUG
            self.branch, counter_ids = create_branch(session, scenario)
        else:
            self.slug = branch_slug
            self.branch = catalogue.get_branch(session, branch_slug)
            counter_ids = {c.name: c.id for c in self.branch.counters}
        self.counters = {name: CounterRun(counter_ids[name], spec) for spec in scenario.counters
                         for name in [spec.name]}
        self.specs = {s.code: s for s in scenario.services}
        self.service_ids = {s.code: s.id for s in self.branch.services}
        self.events: list = []
        self.sequence = 0
        self.rows: dict[int, dict] = {}  # ticket id -> report row
        self.status: dict[int, str] = {}  # ticket id -> waiting/called
        self.issued_at: dict[int, datetime] = {}  # exact, for waits (the report shows seconds)
        self.away: dict[int, int] = {}  # remote tickets not told to set off yet -> their trip, minutes
        self.arrived_at: dict[int, datetime] = {}  # remote tickets here and not called yet
        self.remote_count = 0
        self.stats: DayStats | None = None

    # events are (when, sequence, handler, arguments); the sequence keeps ties in a fixed order
    def at(self, when: datetime, handler, *args) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, handler, args))

    def local(self, day: date, clock: time) -> datetime:
        return hours.wall_to_utc(day, clock, self.scenario.zone)

    def run_day(self, day: date) -> DayStats:
        self.stats = DayStats(day)
        scenario = self.scenario
        opens, closes = self.local(day, scenario.open), self.local(day, scenario.close)
        queueing.close_day(self.session, self.slug, now=opens - timedelta(hours=1))
        for run in self.counters.values():
            for start, end in run.spec.shifts:
                self.at(self.local(day, start), self.shift_starts, run)
                self.at(self.local(day, end), self.shift_ends, run, self.local(day, end) >= closes)
        self.plan_walk_ins(day, opens, closes - timedelta(minutes=scenario.walk_in_cutoff_minutes))
        self.plan_appointments(day, opens, closes)
        sweep = opens
        while sweep <= closes:
            self.at(sweep, self.sweep_no_shows)
            sweep += NO_SHOW_SWEEP
        if scenario.remote is not None:
            self.at(opens, self.set_off_sweep, closes)
        while self.events:
            when, _, handler, args = heapq.heappop(self.events)
            handler(when, *args)
        self.close_remote_rows()
        for ticket_id in sorted(self.rows):
            if not self.history:
                self.report(self.rows[ticket_id])
        self.rows.clear()
        self.status.clear()
        self.issued_at.clear()
        self.away.clear()
        self.arrived_at.clear()
        return self.stats

    # arrivals
    def plan_walk_ins(self, day: date, opens: datetime, last: datetime) -> None:
        rates = self.scenario.walk_in_rates
        for index, (start, rate) in enumerate(rates):
            begin = max(self.local(day, start), opens)
            end = self.local(day, rates[index + 1][0]) if index + 1 < len(rates) else last
            end = min(end, last)
            moment = begin
            while rate > 0:
                moment += timedelta(minutes=self.rng.expovariate(rate / 60))
                if moment >= end:
                    break
                remote_spec = self.scenario.remote
                if remote_spec is not None and self.rng.random() < remote_spec.share:
                    self.at(moment, self.looks_from_home, self.pick_service("walk_in_share"),
                            remote_spec.draw_travel(self.rng), self.patience())
                    continue
                self.at(moment, self.walk_in, self.pick_service("walk_in_share"), self.patience())

    def pick_service(self, share: str) -> str:
        specs = [s for s in self.scenario.services if getattr(s, share) > 0]
        return self.rng.choices([s.code for s in specs], weights=[getattr(s, share) for s in specs])[0]

    def patience(self) -> float:
        mean = self.scenario.patience_mean
        return self.rng.expovariate(1 / mean) if mean else math.inf

    def plan_appointments(self, day: date, opens: datetime, closes: datetime) -> None:
        """The day's bookings, made the day before. Played days book through the product
        (booking.book: the slot capacity of the branch's plan, which keeps the walk-in reserve); a
        customer whose time is full takes the nearest time with room that day, else walks in at
        their time. History days, days without a plan (under a week of history: see
        `simulate(history_days=...)`) and `within_capacity=False` put every wanted booking in as is."""
        per_slot = self.scenario.appointments_per_30_minutes
        if not per_slot or not any(s.appointment_share > 0 for s in self.scenario.services):
            return
        mean, sd = self.scenario.arrival_offset
        slot, number = opens, 0
        wanted = []
        while slot + timedelta(minutes=30) <= closes:
            for _ in range(per_slot):
                number += 1
                code = self.pick_service("appointment_share")
                shows = self.rng.random() >= self.scenario.no_show_rate
                offset = self.rng.gauss(mean, sd) if shows else None
                wanted.append((number, slot, code, offset))
            slot += timedelta(minutes=30)
        booked_at = opens - timedelta(days=1)
        # The nightly plan job; under a week of history there is no plan, and the product's
        # fallback (the counters open when booking, at night none) says nothing about the day.
        planned = (self.within_capacity and not self.history
                   and planning.plan_branch(self.session, self.branch, booked_at) > 0)
        for number, start, code, offset in wanted:
            if planned:
                start, check_in_code = self.book(day, number, start, code, booked_at)
            else:
                check_in_code = self.insert_booking(day, number, start, code)
            if offset is None:
                continue
            if check_in_code is None:  # no time with room that day: comes without a booking (or not)
                if self.unbooked_walk_in:
                    self.at(start + timedelta(minutes=offset), self.walk_in, code, self.patience())
            else:
                self.at(start + timedelta(minutes=offset), self.appointment_arrives, check_in_code, code)

    def book(self, day: date, number: int, start: datetime, code: str, now: datetime) -> tuple[datetime, str | None]:
        for attempt in (start, None):
            if attempt is None:  # full: the nearest time with room (availability lists only those)
                days = booking.availability(self.session, self.slug, code, day, days=1, now=now)["days"]
                free = [s.start for d in days for s in d["slots"] if s.remaining > 0]
                if not free:
                    return start, None
                attempt = min(free, key=lambda at: (abs(at - start), at))
            try:
                made = booking.book(self.session, self.slug, code, attempt, name="Simulated visitor",
                                    email=f"visitor{day:%y%m%d}{number:03d}@sim.example", now=now)
            except Conflict as refusal:
                if refusal.code != "slot_full":
                    raise
                continue
            return attempt, made.appointment.check_in_code
        return start, None

    def insert_booking(self, day: date, number: int, start: datetime, code: str) -> str:
        check_in_code = f"SIM{day:%y%m%d}{number:03d}"
        with write_transaction(self.session):
            self.session.add(Appointment(
                branch_id=self.branch.id, service_id=self.service_ids[code], name="Simulated visitor",
                start_at=start, end_at=start + timedelta(minutes=self.specs[code].mean_minutes), local_date=day,
                status="booked", manage_token_hash=token_hash(new_token()), check_in_code=check_in_code,
                sequence=0, created_at=start - timedelta(days=1),
            ))
        return check_in_code

    # what customers do
    def walk_in(self, now: datetime, code: str, patience: float) -> None:
        issued = queueing.issue_ticket(self.session, self.slug, code, now=now)
        self.issued(now, issued.ticket, "walk_in", patience)

    def looks_from_home(self, now: datetime, code: str, travel: int, patience: float) -> None:
        """A customer at home looks at the live waits (/): joins from home when the wait leaves
        time for the trip ("Leave by" is not "now"), else comes and takes a ticket at the kiosk."""
        estimate = estimates.estimate_branch(self.session, self.branch, now).new_ticket.get(self.service_ids[code])
        self.session.commit()
        if (estimate is not None and estimate.state == "waiting"
                and estimate.low >= travel + self.scenario.remote.set_off_margin_minutes):
            self.joins_from_home(now, code, travel)
        else:
            mean, sd = self.scenario.remote.lateness
            late = self.rng.gauss(mean, sd) if sd else mean
            self.at(now + timedelta(minutes=max(0.0, travel + late)), self.walk_in, code, patience)

    def joins_from_home(self, now: datetime, code: str, travel: int) -> None:
        self.remote_count += 1
        joined = remote.issue_remote(self.session, self.slug, code, travel, phone=f"+1202555{self.remote_count:04d}",
                                     secret=SIMULATION_SECRET, now=now)
        self.away[joined.ticket.id] = travel
        self.issued(now, joined.ticket, "remote", math.inf)
        self.rows[joined.ticket.id].update(travel_minutes=travel, set_off_at=None, arrived_at=None,
                                           lobby_minutes=None, held=False, no_show=False)

    def set_off_sweep(self, now: datetime, closes: datetime) -> None:
        """The product's "time to set off" job; whoever it told (or held before telling: the held
        message says to come) sets off now and arrives after the trip and their lateness."""
        if self.away:
            remote.send_set_off(self.session, now=now)
            told = self.session.execute(
                select(Ticket.id).where(Ticket.id.in_(list(self.away)),
                                        (Ticket.set_off_sent_at.is_not(None)) | (Ticket.held_count > 0))
            ).scalars().all()
            spec = self.scenario.remote
            for ticket_id in sorted(told):
                travel = self.away.pop(ticket_id)
                self.rows[ticket_id]["set_off_at"] = now.isoformat(timespec="seconds")
                if self.rng.random() < spec.no_come_rate:
                    continue
                mean, sd = spec.lateness
                late = self.rng.gauss(mean, sd) if sd else mean
                self.at(max(now, now + timedelta(minutes=travel + late)), self.arrives_from_home, ticket_id)
        if now < closes or any(run.on_shift for run in self.counters.values()):
            self.at(now + SET_OFF_SWEEP, self.set_off_sweep, closes)

    def arrives_from_home(self, now: datetime, ticket_id: int) -> None:
        if self.session.get(Ticket, ticket_id, populate_existing=True).status != "waiting":
            return  # too late: the ticket was a no-show
        remote.arrived(self.session, ticket_id, now=now)
        self.rows[ticket_id]["arrived_at"] = now.isoformat(timespec="seconds")
        self.arrived_at[ticket_id] = now
        for run in self.counters.values():
            self.call(now, run)

    def close_remote_rows(self) -> None:
        """The day's end: which remote tickets were held, which were no-shows (call_next decided)."""
        ids = [i for i, row in self.rows.items() if row["kind"] == "remote"]
        if not ids:
            return
        for ticket_id, status, held in self.session.execute(
                select(Ticket.id, Ticket.status, Ticket.held_count).where(Ticket.id.in_(ids))):
            self.rows[ticket_id].update(held=held > 0, no_show=status == "no_show")
        self.session.commit()

    def appointment_arrives(self, now: datetime, check_in_code: str, code: str) -> None:
        try:
            done = booking.check_in(self.session, self.slug, check_in_code, now=now)
        except Conflict as refusal:
            if refusal.code == "too_early":
                opens = self.session.scalar(select(Appointment.start_at).where(
                    Appointment.check_in_code == check_in_code)) - timedelta(
                    minutes=booking.rules_for(self.branch).check_in_early_minutes)
                self.at(opens, self.appointment_arrives, check_in_code, code)
                return
            if refusal.code in ("too_late", "no_show"):  # the kiosk offers a walk-in ticket instead
                self.walk_in(now, code, self.patience())
                return
            raise
        self.issued(now, done.ticket, "appointment", math.inf)

    def issued(self, now: datetime, ticket: Ticket, kind: str, patience: float) -> None:
        self.stats.tickets += 1
        self.status[ticket.id] = "waiting"
        self.issued_at[ticket.id] = now
        self.rows[ticket.id] = {
            "label": ticket.label, "service": ticket.prefix, "kind": kind,
            "issued_at": now.isoformat(timespec="seconds"),
            # ISO 8601: the booked start for a booked visit (None for a walk-in), the call time.
            "booked_start": ticket.effective_at.isoformat(timespec="seconds") if kind == "appointment" else None,
            "called_at": None,
            "n_ahead": queue_order.count_ahead(self.session, ticket, now),
            "open_counters": estimate_state.open_counters_for(self.session, ticket.service_id),
            "estimate_minutes": ticket.estimate_minutes, "low_minutes": ticket.estimate_low,
            "high_minutes": ticket.estimate_high, "actual_wait_minutes": None, "abandoned": False,
        }
        if self.observer:  # benchmarks look at the branch as the ticket was issued
            self.observer(self, now, ticket, self.rows[ticket.id])
        if math.isfinite(patience):
            self.at(now + timedelta(minutes=patience), self.gives_up, ticket.id)
        for run in self.counters.values():
            self.call(now, run)

    def gives_up(self, now: datetime, ticket_id: int) -> None:
        if self.status.get(ticket_id) != "waiting":
            return
        queueing.leave(self.session, ticket_id, now=now)
        self.status[ticket_id] = "left"
        self.rows[ticket_id]["abandoned"] = True
        self.stats.abandoned += 1

    # what staff do
    def shift_starts(self, now: datetime, run: CounterRun) -> None:
        run.on_shift, run.finishes_queue = True, False
        catalogue.update_counter(self.session, run.id, state="open")
        self.call(now, run)

    def shift_ends(self, now: datetime, run: CounterRun, at_closing: bool) -> None:
        if at_closing:
            run.finishes_queue = True
        else:
            run.on_shift = False
        if run.ticket_id is None:
            self.call(now, run) if run.on_shift else self.close(run)

    def close(self, run: CounterRun) -> None:
        run.on_shift = False
        catalogue.update_counter(self.session, run.id, state="closed")

    def call(self, now: datetime, run: CounterRun) -> None:
        if not run.on_shift or run.ticket_id is not None or (run.handover_until and now < run.handover_until):
            return
        if self.scenario.remote is not None and not run.finishes_queue and self.only_away(run, now):
            return
        ticket = queueing.call_next(self.session, run.id, now=now)
        if ticket is None:
            if run.finishes_queue:
                self.close(run)
            return
        queueing.start(self.session, ticket.id, now=now)
        run.ticket_id = ticket.id
        self.status[ticket.id] = "called"
        row = self.rows[ticket.id]
        wait = (now - self.issued_at[ticket.id]).total_seconds() / 60
        row["actual_wait_minutes"] = round(wait, 3)
        row["called_at"] = now.isoformat(timespec="seconds")
        if ticket.id in self.arrived_at:  # joined from home: the wait that counts is in the lobby
            row["lobby_minutes"] = round((now - self.arrived_at.pop(ticket.id)).total_seconds() / 60, 3)
        self.stats.served += 1
        self.stats.waits.append(wait)
        length = self.specs[ticket.prefix].draw(self.rng)
        self.at(now + timedelta(minutes=length), self.visit_ends, run)

    def only_away(self, run: CounterRun, now: datetime) -> bool:
        """Whether everyone this counter could call joined from home and is not here yet. Staff see
        that on the console ("not here yet") and wait rather than call: calling would only hold
        them back (until closing time, when everyone with a ticket is called)."""
        waiting = self.session.execute(
            select(Ticket.remote, Ticket.arrived_at).where(
                Ticket.branch_id == self.branch.id, Ticket.status == "waiting",
                Ticket.local_date == numbering.local_day(now, self.scenario.zone),
                Ticket.service_id.in_([self.service_ids[code] for code in run.spec.services]))
        ).all()
        self.session.commit()
        return bool(waiting) and all(remote and arrived_at is None for remote, arrived_at in waiting)

    def visit_ends(self, now: datetime, run: CounterRun) -> None:
        queueing.finish(self.session, run.ticket_id, now=now)
        run.ticket_id = None
        if run.on_shift and self.scenario.handover_minutes:
            run.handover_until = now + timedelta(minutes=self.scenario.handover_minutes)
            self.at(run.handover_until, self.call, run)
        elif run.on_shift:
            self.call(now, run)
        else:
            self.close(run)

    def sweep_no_shows(self, now: datetime) -> None:
        booking.sweep_no_shows(self.session, now=now)


def simulate(
    scenario: Scenario, seed: int, report_path: str | Path | None = None, *, days: int | None = None,
    database: str | Path | None = None, progress: Callable[[int, int, DayStats], None] | None = None,
    observer: Callable[[BranchSimulation, datetime, Ticket, dict], None] | None = None,
    history_days: int = 0, within_capacity: bool = False, unbooked_walk_in: bool = True,
) -> list[DayStats]:
    """Run the scenario on a fresh database (a temporary file unless `database` is given).

    Writes one JSON line per ticket to `report_path`; returns per-day figures. `history_days`:
    first play that many open days before the scenario's start, unreported, so the branch has the
    history a running branch has (learned estimates, a forecast and a staffing plan, hence booking
    capacity); the reported days then draw the same arrivals as without them.
    """
    from flask_migrate import upgrade

    from queue_app import MIGRATIONS_DIR, create_app
    from queue_app.core.extensions import db

    with tempfile.TemporaryDirectory(prefix="queue-sim-") as scratch:
        path = Path(database) if database else Path(scratch) / "simulation.sqlite"
        if path.exists():
            raise ScenarioError(f"{path}: exists; the simulator needs a new database file")
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "QUEUE_APP_RUN_SCHEDULER": False,
                          "SECRET_KEY": SIMULATION_SECRET, "TESTING": True})
        estimate_learning.forget_learned()
        out = open(report_path, "w", encoding="utf-8") if report_path else None
        try:
            with app.app_context():
                upgrade(directory=str(MIGRATIONS_DIR))
                # Loaded rows stay loaded across commits, as in the app's request sessions
                # (core/extensions.py): expired after every commit, they were read again at the
                # next touch, a fifth of the simulator's time.
                with Session(db.engine, info={QUIET_KEY: True}, expire_on_commit=False) as session:
                    sim = BranchSimulation(session, scenario, seed,
                                           lambda row: out.write(json.dumps(row) + "\n") if out else None,
                                           observer, within_capacity=within_capacity)
                    sim.unbooked_walk_in = unbooked_walk_in
                    if history_days:
                        sim.history, watching, sim.observer = True, sim.observer, None
                        for day in scenario.days_before(history_days):
                            sim.run_day(day)
                        sim.history, sim.observer, sim.rng = False, watching, random.Random(seed)
                    open_days = scenario.open_days(days)
                    results = []
                    for index, day in enumerate(open_days, 1):
                        results.append(sim.run_day(day))
                        if out:
                            out.flush()
                        if progress:
                            progress(index, len(open_days), results[-1])
                db.engine.dispose()
        finally:
            if out:
                out.close()
            estimate_learning.forget_learned()
    return results
