"""Weeks of lobby history for `queue-app demo`, made by the branch simulator.

So that on first start the wait estimates have learned service times, and the forecast, the
staffing plan and the dashboard charts show real shapes (a late-morning peak, a lunch break, a
busier Monday), the demo branch's last weeks are played through the real product by the
simulator: walk-ins, bookings with no-shows, counters with the branch's skills and hours, people
who give up. Every day the branch is open is played (the demo branch never closes, so weekends
too: a Sunday has a forecast and a plan). Runs once: a branch that already has tickets before
today is left alone.
"""
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.core.events import QUIET_KEY
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.demo.scenarios import CounterSpec, Scenario, ServiceSpec
from queue_app.demo.simulation import BranchSimulation, DayStats
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket

# Walk-ins per hour through a demo day (local time): a late-morning peak, nobody at lunch.
WALK_IN_RATES = [("09:00", 9.0), ("10:00", 13.0), ("11:00", 15.0), ("12:30", 0.0), ("13:30", 10.0),
                 ("15:00", 12.0), ("16:30", 6.0)]
WALK_IN_SHARES = {"A": 0.5, "B": 0.2, "C": 0.3}
BOOKING_SHARES = {"A": 0.3, "B": 0.7}
SHIFTS = [(time(9, 0), time(12, 30)), (time(13, 30), time(17, 0))]
# Two weeks of every open day: enough for a forecast (it needs 7 days) with each weekday twice,
# and about a minute to play.
HISTORY_WEEKS = 2
VISIT_CV = 0.6  # visit lengths: lognormal around the service's expected minutes (the live demo too)


def demo_scenario(session: Session, branch_slug: str, start: date, days: int) -> Scenario:
    branch = catalogue.get_branch(session, branch_slug)
    services = [
        ServiceSpec(s.code, s.name, float(s.expected_minutes), VISIT_CV, "lognormal",
                    WALK_IN_SHARES.get(s.code, 0.1), BOOKING_SHARES.get(s.code, 0.0) if s.booking_enabled else 0.0)
        for s in branch.services if s.active
    ]
    counters = [CounterSpec(c.name, [s.code for s in c.services], SHIFTS) for c in branch.counters]
    return Scenario(
        name="demo history", timezone=branch.timezone, start_date=start, days=days, weekdays_only=False,
        open=time(9, 0), close=time(17, 0), walk_in_cutoff_minutes=20, services=services,
        walk_in_rates=[(time.fromisoformat(at), rate) for at, rate in WALK_IN_RATES],
        appointments_per_30_minutes=1, no_show_rate=0.1, arrival_offset=(-6.0, 8.0), counters=counters,
        patience_mean=40.0, seed=2026,
    )


def has_history(session: Session, branch_slug: str, today: date) -> bool:
    """Whether the last four weeks already hold a lobby's worth of walk-ins (the customer-records
    demo seeds a few visits of a dozen people, which is not a history to forecast from)."""
    branch = catalogue.get_branch(session, branch_slug)
    return bool(session.scalar(select(func.count(Ticket.id)).where(
        Ticket.branch_id == branch.id, Ticket.local_date < today, Ticket.local_date >= today - timedelta(days=28),
        Ticket.priority != "appointment")) > 500)


def seed_demo_history(session: Session, branch_slug: str, *, weeks: int = HISTORY_WEEKS,
                      limit_days: int | None = None, progress: Callable[[int, int, DayStats], None] | None = None,
                      now: datetime | None = None) -> int:
    """Simulate the days the branch was open in the last `weeks` before today (only the last
    `limit_days` of them when given); returns the number of days played."""
    now = now or utcnow()
    branch = catalogue.get_branch(session, branch_slug)
    today = numbering.local_day(now, branch.zone)
    if has_history(session, branch_slug, today):
        return 0
    first = today - timedelta(days=7 * weeks)
    days = [first + timedelta(days=i) for i in range(7 * weeks)]
    days = [d for d in days if not branch.is_closed_on(d)][-limit_days if limit_days else None:]
    if not days:
        return 0
    first = days[0]
    states = {c.id: c.state for c in branch.counters}
    scenario = demo_scenario(session, branch_slug, first, len(days))
    session.commit()
    # Quiet: nobody watches the past, so no live-page pushes or webhooks for thousands of changes.
    with Session(session.get_bind(), info={QUIET_KEY: True}, expire_on_commit=False) as quiet:
        # Bookings as the scenario wants them (no nightly plan and booking calls per played day).
        simulation = BranchSimulation(quiet, scenario, scenario.seed, lambda row: None, branch_slug=branch_slug,
                                      within_capacity=False)
        for index, day in enumerate(days, 1):
            stats = simulation.run_day(day)
            if progress:
                progress(index, len(days), stats)
        # The simulation opened and closed counters as the days went; give them back as they were.
        with write_transaction(quiet):
            for counter_id, state in states.items():
                quiet.get(Counter, counter_id).state = state
    session.expire_all()
    return len(days)
