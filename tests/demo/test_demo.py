"""The live demo: an hour of simulated lobby traffic on a branch with simulated history, on a
weekday and on a Sunday, driven by an explicit clock through the real product."""
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from queue_app.accounts.models import Staff
from queue_app.catalogue.models import Counter
from queue_app.catalogue.operations import get_branch
from queue_app.demo.history import seed_demo_history
from queue_app.demo.traffic import (
    HUMAN_COUNTER,
    DemoTraffic,
    open_around_the_clock,
    start_demo_traffic,
)
from queue_app.planning import plan as planning
from queue_app.planning import reports
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket


@pytest.mark.slow
@pytest.mark.parametrize("start", [
    datetime(2026, 3, 4, 6, 0, tzinfo=UTC),  # Wednesday 14:00 in Taipei
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),  # Sunday 20:00 in Taipei, outside the history's hours
], ids=["weekday", "sunday-night"])
def test_an_hour_of_demo_traffic_keeps_a_real_queue_and_a_forecast(session, start):
    open_around_the_clock(session, "demo")
    # A week of every day (a forecast needs seven), so a Sunday has Sunday history too.
    assert seed_demo_history(session, "demo", weeks=1, limit_days=7, now=start) == 7
    traffic = DemoTraffic("demo", seed=16)
    assert traffic.fill_queue(session, start) >= 5
    branch = get_branch(session, "demo")
    day = start.astimezone(branch.zone).date()
    queue_lengths = []
    now = start
    while now < start + timedelta(hours=1):
        now += timedelta(seconds=20)
        traffic.step(session, now)
        queue_lengths.append(traffic.waiting(session, branch.id, day))
    session.commit()

    # Two simulated counters at ~85 % of A/B/C visits (8.5 minutes on average): ~12 walk-ins an hour.
    assert 5 <= traffic.counts["issued"] <= 35
    assert max(queue_lengths) <= 30 and min(queue_lengths[len(queue_lengths) // 2:]) >= 1
    assert traffic.counts["served"] >= 5
    assert traffic.counts["gave_up"] <= traffic.counts["issued"] // 3
    # The dashboard's own figures: the give-ups are recorded as the product records abandonment,
    # and today's forecast (from the simulated history, by the real planner) is not empty.
    planning.plan_branch(session, branch, now)
    live = reports.today_live(session, branch, now)
    assert live["abandoned"] == traffic.counts["gave_up"]
    assert live["arrivals"] >= traffic.counts["issued"]
    assert live["forecast_day"] is not None and live["forecast_day"] > 50
    plan = planning.plan_of_day(session, branch, day)
    assert sum(row.forecast_arrivals for row in plan) > 50 and max(row.counters_planned for row in plan) >= 2


def test_counter_1_is_simulated_until_a_person_works_it_then_left_alone(session):
    open_around_the_clock(session, "demo")
    counter = session.scalar(select(Counter).where(Counter.name == HUMAN_COUNTER))
    staff = session.scalar(select(Staff).where(Staff.email == "staff1@demo.test"))
    start = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
    traffic = DemoTraffic("demo", seed=3)
    traffic.fill_queue(session, start, size=10)
    for minute in range(1, 31):
        traffic.step(session, start + timedelta(minutes=minute))
    simulated = session.scalars(select(Ticket).where(Ticket.counter_id == counter.id)).all()
    assert simulated and all(t.staff_id is None for t in simulated)
    session.commit()
    # A person finishes what the simulation had going there and calls the next one.
    now = start + timedelta(minutes=31)
    current = session.scalar(select(Ticket).where(Ticket.counter_id == counter.id,
                                                  Ticket.status.in_(("called", "serving"))))
    if current is not None:
        queueing.finish(session, current.id, staff_id=staff.id, now=now)
    mine = queueing.call_next(session, counter.id, staff_id=staff.id, now=now)
    assert mine is not None
    for minute in range(32, 92):
        traffic.step(session, start + timedelta(minutes=minute))
    session.commit()
    assert session.get(Ticket, mine.id).status == "called"  # nobody started or finished it for them
    assert not session.scalar(select(Ticket.id).where(Ticket.counter_id == counter.id, Ticket.id != mine.id,
                                                      Ticket.called_at > now))


def test_the_demo_thread_serves_a_waiting_lobby_on_the_real_clock(app, session):
    open_around_the_clock(session, "demo")
    traffic = DemoTraffic("demo", seed=5)
    traffic.fill_queue(session)
    stop = threading.Event()
    thread = start_demo_traffic(app, traffic, interval=0.1, stop=stop)
    try:
        deadline = time.monotonic() + 20
        called = 0
        while time.monotonic() < deadline and called < 3:
            time.sleep(0.2)
            called = session.scalar(select(func.count(Ticket.id)).where(Ticket.status.in_(("called", "serving"))))
            session.commit()
    finally:
        stop.set()
        thread.join(10)
    assert called == 3  # every counter took the next person, Counter 1 too (nobody works it)
    assert not thread.is_alive()
