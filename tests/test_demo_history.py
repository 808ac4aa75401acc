"""The demo's simulated history: real tickets through the real product, then a plan from them."""
from datetime import timedelta

from sqlalchemy import func, select

from queue_app.demo_history import has_history, seed_demo_history
from queue_app.domain import numbering, planning
from queue_app.domain.catalogue import get_branch
from queue_app.models import Appointment, Counter, Ticket, utcnow


def test_demo_history_fills_past_weekdays_once_and_leaves_counters_as_they_were(session):
    branch = get_branch(session, "demo")
    states = {c.id: c.state for c in branch.counters}
    today = numbering.local_day(utcnow(), branch.zone)
    seen = []
    days = seed_demo_history(session, "demo", weeks=1, limit_days=2,
                             progress=lambda done, total: seen.append((done, total)))
    assert days == 2 and seen[-1] == (2, 2)
    per_day = dict(session.execute(
        select(Ticket.local_date, func.count(Ticket.id)).where(Ticket.local_date < today).group_by(Ticket.local_date)
    ).all())
    assert len(per_day) == 2 and all(d.weekday() < 5 and d >= today - timedelta(days=7) for d in per_day)
    assert all(count > 40 for count in per_day.values())
    assert session.scalar(select(func.count(Appointment.id)).where(Appointment.status == "checked_in")) > 0
    assert {c.id: c.state for c in session.scalars(select(Counter)).unique()} == states
    # Finished visits have the real product's timestamps: called after issue, finished after call.
    ticket = session.scalar(select(Ticket).where(Ticket.status == "done").limit(1))
    assert ticket.issued_at <= ticket.called_at <= ticket.finished_at
    # Two days are not a history to forecast from yet (the demo seeds three weeks): no plan.
    assert has_history(session, "demo", today) is False
    assert planning.plan_branch(session, branch) == 0
