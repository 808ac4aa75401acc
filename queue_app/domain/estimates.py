"""Wait estimates shown with every ticket.

This first estimator is deliberately simple: people ahead times the service's expected minutes,
shared among the open counters serving that service, with a wide range. The wait-estimate issue
replaces it with one learned from the event log and checked in the simulator.
"""
import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app.models import Counter, CounterService, Service, Ticket


@dataclass(frozen=True)
class Estimate:
    minutes: int
    low: int
    high: int

    def as_dict(self) -> dict:
        return {"minutes": self.minutes, "low": self.low, "high": self.high}


def open_counters_for(session: Session, service_id: int) -> int:
    return session.scalar(
        select(func.count(Counter.id))
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(CounterService.service_id == service_id, Counter.state == "open")
    )


def estimate(ahead: int, expected_minutes: int, open_counters: int) -> Estimate:
    minutes = math.ceil(ahead * expected_minutes / max(1, open_counters))
    return Estimate(minutes=minutes, low=math.floor(minutes * 0.6), high=math.ceil(minutes * 1.5))


def estimate_wait(session: Session, ticket: Ticket, ahead: int, open_counters: int | None = None) -> Estimate:
    """`open_counters` may be passed in when estimating many tickets of one service at once."""
    if ticket.status != "waiting":
        return Estimate(0, 0, 0)
    service = session.get(Service, ticket.service_id)
    if open_counters is None:
        open_counters = open_counters_for(session, ticket.service_id)
    return estimate(ahead, service.expected_minutes, open_counters)
