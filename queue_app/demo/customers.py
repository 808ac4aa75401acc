"""Weeks of customer history for `queue-app demo`: regulars, valued customers drifting away, one-off
visitors, answered feedback. So on first start a manager sees segments, a churn list and feedback
results, and staff see a returning customer's recent visits at the counter.

Past visits are written as finished tickets directly (the queue functions only number today's
tickets); then the nightly recompute and churn scan run as they would at night.
"""
import random
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core.models import utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import operations as customers
from queue_app.customers import standing as customer_standing
from queue_app.customers.models import Customer, Feedback
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket

# (name, phone digits after +8869, pattern): pattern drives the visits below.
PEOPLE = [
    ("Chen Mei-ling", "12000101", "regular"), ("Lin Chih-hao", "12000102", "regular"),
    ("Wang Shu-fen", "12000103", "regular"), ("Huang Wei", "12000104", "drifting"),
    ("Chang Ya-ting", "12000105", "drifting"), ("Liu Jun", "12000106", "lapsed_valued"),
    ("Tsai Hsin-yi", "12000107", "loyal_light"), ("Yang Po-wen", "12000108", "loyal_light"),
    ("Hsu An", "12000109", "once"), ("Cheng Li", "12000110", "once"), ("Kuo Ming", "12000111", "once"),
    ("Lai Yu", "12000112", "regular"),
]


def returning_phone(rng: random.Random, share: float = 0.3) -> str | None:
    """A seeded customer's phone for about `share` of the demo's walk-ins, else None (anonymous)."""
    if rng.random() >= share:
        return None
    return f"+8869{rng.choice(PEOPLE)[1]}"


def add_visit(session: Session, branch: Branch, service: Service, customer_id: int | None, at: datetime, *,
              counter: Counter | None = None, staff_id: int | None = None, wait_minutes: float = 8,
              service_minutes: float = 10, status: str = "done") -> Ticket:
    """A past visit as a finished ticket, inside the caller's write transaction (demo and tests)."""
    day = numbering.local_day(at, branch.zone)
    number = numbering.next_number(session, branch.id, day, service.code)
    called = at + timedelta(minutes=wait_minutes)
    ticket = Ticket(
        branch_id=branch.id, service_id=service.id, local_date=day, prefix=service.code, number=number,
        label=numbering.format_label(service.code, number), status=status, priority="normal", effective_at=at,
        sort_key=at, issued_at=at, called_at=called, started_at=called if status == "done" else None,
        finished_at=called + timedelta(minutes=service_minutes) if status == "done" else called,
        counter_id=counter.id if counter else None, staff_id=staff_id, customer_id=customer_id,
        token_hash=token_hash(new_token()),
    )
    session.add(ticket)
    session.flush()
    return ticket


def _visit_days(pattern: str, rng: random.Random) -> list[int]:
    """Days ago of each visit for a pattern."""
    if pattern == "regular":  # every ~14 days for months, seen lately
        start = rng.randint(1, 6)
        return [start + 14 * i + rng.randint(-1, 1) for i in range(14)]
    if pattern == "drifting":  # valued but irregular, last seen 90-110 days ago
        last = rng.randint(90, 110)
        return [last + offset for offset in (0, 4, 35, 41, 95, 101, 160, 200)]
    if pattern == "lapsed_valued":  # many visits, then nothing for 120+ days
        last = rng.randint(120, 140)
        return [last + 9 * i for i in range(10)]
    if pattern == "loyal_light":  # comes every ~30 days, not many visits in the window
        return [rng.randint(2, 10) + 30 * i for i in range(5)]
    return [rng.randint(3, 60)]


def seed_customer_history(session: Session, branch_slug: str, *, now: datetime | None = None, seed: int = 7) -> int:
    """Customers with weeks of visits and feedback at the branch; does nothing if they exist already."""
    now = now or utcnow()
    rng = random.Random(seed)
    branch = session.scalar(select(Branch).where(Branch.slug == branch_slug))
    if branch is None or session.scalar(select(func.count(Customer.id)).where(Customer.name == PEOPLE[0][0])):
        return 0
    services = session.scalars(select(Service).where(Service.branch_id == branch.id).order_by(Service.code)).all()
    counters = session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.name)).all()
    staff = session.scalars(select(Staff).where(Staff.role == "staff").order_by(Staff.email)).unique().all()
    session.commit()
    made = 0
    with write_transaction(session):
        for name, digits, pattern in PEOPLE:
            customer = customers.find_or_create(session, phone=f"+8869{digits}", region=branch.country, name=name,
                                                now=now - timedelta(days=400))
            for days_ago in sorted(_visit_days(pattern, rng), reverse=True):
                at = now - timedelta(days=days_ago, hours=rng.randint(0, 5))
                ticket = add_visit(session, branch, rng.choice(services), customer.id, at,
                                   counter=rng.choice(counters), staff_id=rng.choice(staff).id if staff else None,
                                   wait_minutes=rng.uniform(2, 25), service_minutes=rng.uniform(4, 20))
                if rng.random() < 0.45:
                    rating = rng.choices([5, 4, 3, 2, 1], weights=[45, 30, 12, 8, 5])[0]
                    score = min(10, max(0, rating * 2 + rng.randint(-2, 0)))
                    session.add(Feedback(ticket_id=ticket.id, branch_id=branch.id, service_id=ticket.service_id,
                                         counter_id=ticket.counter_id, staff_id=ticket.staff_id,
                                         customer_id=customer.id, rating=rating, nps=score,
                                         comment=rng.choice(["", "", "Quick and friendly.", "Waited a bit long.",
                                                             "Very helpful staff."]),
                                         channel="tracking", answered_at=ticket.finished_at + timedelta(minutes=5)))
                made += 1
    customer_standing.recompute_branch(session, branch_slug, now=now)
    return made
