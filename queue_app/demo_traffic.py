"""Lobby traffic for `queue-app demo`: walk-ins arrive and counters call, serve and finish.

It drives the same domain functions as kiosks and staff, so the display and the API move as they
would in a branch. The branch simulator (simulation.py, wait-estimate issue) replaces this with
scenario-driven traffic.
"""
import random
import threading
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.demo_customers import returning_phone
from queue_app.domain import queueing
from queue_app.domain.errors import DomainError
from queue_app.models import Branch, Counter, Service, Ticket, utcnow

# Left for the person trying the staff console.
HUMAN_COUNTER = "Counter 1"


def _tick(session: Session, branch_slug: str, rng: random.Random) -> None:
    branch = session.scalar(select(Branch).where(Branch.slug == branch_slug))
    services = session.scalars(select(Service).where(Service.branch_id == branch.id, Service.active.is_(True))).all()
    if services and rng.random() < 0.6:
        service = rng.choice(services)
        priority = "accessibility" if rng.random() < 0.08 else "normal"
        # Some arrivals are the seeded returning customers, so the counter shows their history.
        queueing.issue_ticket(session, branch_slug, service.code, priority=priority, phone=returning_phone(rng),
                              issued_by="kiosk")  # the lobby's kiosk (its accessibility button)
    now = utcnow()
    counters = session.scalars(
        select(Counter).where(Counter.branch_id == branch.id, Counter.state == "open", Counter.name != HUMAN_COUNTER)
    ).all()
    for counter in counters:
        current = session.scalar(
            select(Ticket).where(Ticket.counter_id == counter.id, Ticket.status.in_(("called", "serving")))
        )
        if current is None:
            if rng.random() < 0.5:
                queueing.call_next(session, counter.id)
        elif current.status == "called" and now - current.called_at > timedelta(seconds=8):
            if rng.random() < 0.1:
                queueing.no_show(session, current.id)
            else:
                queueing.start(session, current.id)
        elif current.status == "serving":
            minutes = current.service.expected_minutes
            if now - current.started_at > timedelta(seconds=rng.uniform(2, 4) * minutes):
                queueing.finish(session, current.id)
        session.commit()  # end the read transaction between writes


def start_demo_traffic(app, branch_slug: str, interval: float = 3.0) -> threading.Thread:
    from queue_app.extensions import db

    def loop():
        rng = random.Random()
        with app.app_context():
            while True:
                with Session(db.engine) as session:
                    try:
                        _tick(session, branch_slug, rng)
                    except DomainError:
                        session.rollback()
                time.sleep(interval)

    thread = threading.Thread(target=loop, name="demo-traffic", daemon=True)
    thread.start()
    return thread
