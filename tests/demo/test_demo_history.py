"""The demo's simulated history: real tickets through the real product, then a plan from them."""
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Counter
from queue_app.catalogue.operations import get_branch
from queue_app.demo.history import has_history, seed_demo_history
from queue_app.demo.traffic import open_around_the_clock
from queue_app.planning import plan as planning
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket


def test_demo_history_fills_past_open_days_once_and_leaves_counters_as_they_were(session):
    open_around_the_clock(session, "demo")  # as `queue-app demo` does
    branch = get_branch(session, "demo")
    states = {c.id: c.state for c in branch.counters}
    now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # a Monday, 12:00 in Taipei
    today = numbering.local_day(now, branch.zone)
    seen = []
    days = seed_demo_history(session, "demo", weeks=1, limit_days=2, now=now,
                             progress=lambda done, total, stats: seen.append((done, stats.day)))
    # The branch is open every day, so the two days before a Monday are a Saturday and a Sunday.
    assert days == 2 and seen == [(1, today - timedelta(days=2)), (2, today - timedelta(days=1))]
    per_day = dict(session.execute(
        select(Ticket.local_date, func.count(Ticket.id)).where(Ticket.local_date < today).group_by(Ticket.local_date)
    ).all())
    assert sorted(per_day) == [today - timedelta(days=2), today - timedelta(days=1)]
    assert all(count > 40 for count in per_day.values())
    assert session.scalar(select(func.count(Appointment.id)).where(Appointment.status == "checked_in")) > 0
    assert {c.id: c.state for c in session.scalars(select(Counter)).unique()} == states
    # Finished visits have the real product's timestamps: called after issue, finished after call.
    ticket = session.scalar(select(Ticket).where(Ticket.status == "done").limit(1))
    assert ticket.issued_at <= ticket.called_at <= ticket.finished_at
    # Two days are not a history to forecast from yet (the demo seeds two weeks): no plan.
    assert has_history(session, "demo", today) is False
    assert planning.plan_branch(session, branch, now) == 0
