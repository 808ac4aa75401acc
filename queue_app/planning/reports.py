"""Branch statistics for the manager dashboard and its CSV export: plain functions over a session.

From Ticket rows, per interval (branch-local grid of the planning interval), per service and per
counter: arrivals, served, no-shows, abandoned, average and 90th-percentile wait, service level.

Definitions (the same everywhere, so the page, the CSV and the what-if agree):

- A ticket belongs to the interval in which it was issued (the arrival cohort).
- Wait: from the later of issue and the ticket's effective time to the first call. For walk-ins
  the effective time is the issue; for bookings it is the booked start, so an early arrival's
  time before its booked start is not counted as waiting.
- Abandoned: a ticket that was never called and whose holder left the queue (the `left` event).
- Service level: tickets called within the branch's target wait (planning_rules
  target_wait_minutes) over the tickets decided: called, or abandoned (a miss, whenever they
  left). For today, a ticket still waiting longer than the target is a miss already; one
  waiting less is not counted yet.
- Per counter: the tickets called there (arrivals and abandonment do not belong to a counter),
  with their mean visit length (call to finish).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core import day_range
from queue_app.core.errors import Invalid
from queue_app.core.models import utcnow
from queue_app.planning.models import ArrivalForecast, StaffingPlan
from queue_app.planning.plan import planning_rules
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket, TicketEvent

MAX_RANGE_DAYS = 92


@dataclass
class Bucket:
    """Running totals for one interval, service, counter or day."""

    arrivals: int = 0
    walk_ins: int = 0
    served: int = 0
    no_shows: int = 0
    abandoned: int = 0
    within_target: int = 0
    decided: int = 0
    waits: list = field(default_factory=list)  # minutes, called tickets
    visits: list = field(default_factory=list)  # minutes from call to finish

    def as_dict(self) -> dict:
        waits = np.array(self.waits, dtype=float)
        return {
            "arrivals": self.arrivals,
            "walk_ins": self.walk_ins,
            "called": len(self.waits),
            "served": self.served,
            "no_shows": self.no_shows,
            "abandoned": self.abandoned,
            "abandonment": _ratio(self.abandoned, self.arrivals),
            "avg_wait": _round(float(waits.mean())) if len(waits) else None,
            "p90_wait": _round(float(np.percentile(waits, 90))) if len(waits) else None,
            "service_level": _ratio(self.within_target, self.decided),
            "avg_visit": _round(float(np.mean(self.visits))) if self.visits else None,
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(minutes: float) -> float:
    return round(minutes, 2)


def parse_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """A date range from ISO strings (either may be missing: the last 7 days up to today)."""
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=6)
    except (TypeError, ValueError, OverflowError):
        raise Invalid("invalid_field", "Dates are YYYY-MM-DD.", {"from": ["YYYY-MM-DD."]})
    for name, day in (("from", start), ("to", end)):
        if not day_range.in_range(day):
            raise Invalid("invalid_field", f"Dates run from {day_range.FIRST_DAY} to {day_range.LAST_DAY}.",
                          {name: [f"From {day_range.FIRST_DAY} to {day_range.LAST_DAY}."]})
    if start > end:
        raise Invalid("invalid_field", "The range ends before it starts.", {"to": ["On or after the start."]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise Invalid("invalid_field", f"At most {MAX_RANGE_DAYS} days at a time.",
                      {"from": [f"At most {MAX_RANGE_DAYS} days."]})
    return start, end


def interval_start(moment: datetime, branch: Branch, interval: int) -> datetime:
    """UTC start of the branch-local interval of `interval` minutes that holds `moment`."""
    local = moment.astimezone(branch.zone)
    minute = (local.hour * 60 + local.minute) // interval * interval
    start = local.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)
    return start.astimezone(moment.tzinfo)


@dataclass
class Stats:
    branch: str
    first: date
    last: date
    interval_minutes: int
    target_wait_minutes: int
    target: float
    total: dict
    days: list[dict]
    intervals: list[dict]
    services: list[dict]
    counters: list[dict]

    def as_dict(self) -> dict:
        return {"branch": self.branch, "from": self.first.isoformat(), "to": self.last.isoformat(),
                "interval_minutes": self.interval_minutes, "target_wait_minutes": self.target_wait_minutes,
                "target": self.target, "total": self.total, "days": self.days, "intervals": self.intervals,
                "services": self.services, "counters": self.counters}


def branch_stats(session: Session, branch: Branch, first: date, last: date, now: datetime | None = None) -> Stats:
    """Statistics of the branch's local days `first`..`last` (inclusive), with the forecast beside them."""
    now = now or utcnow()
    rules = planning_rules(branch)
    interval = rules.interval_minutes
    target = timedelta(minutes=rules.target_wait_minutes)
    left = exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.type == "left")
    rows = session.execute(
        select(Ticket.issued_at, Ticket.effective_at, Ticket.called_at, Ticket.finished_at, Ticket.status,
               Ticket.priority, Ticket.service_id, Ticket.counter_id, Ticket.local_date, left)
        .where(Ticket.branch_id == branch.id, Ticket.local_date >= first, Ticket.local_date <= last)
    ).all()
    total, days, intervals, services, counters = Bucket(), {}, {}, {}, {}
    for issued, effective, called, finished, status, priority, service_id, counter_id, day, was_left in rows:
        starts_at = interval_start(issued, branch, interval)
        cohort = [total, days.setdefault(day, Bucket()), intervals.setdefault(starts_at, Bucket()),
                  services.setdefault(service_id, Bucket())]
        counter = counters.setdefault(counter_id, Bucket()) if counter_id is not None and called else None
        waited_from = max(issued, effective)
        for bucket in cohort:
            bucket.arrivals += 1
            bucket.walk_ins += priority != "appointment"
        if called is not None:
            wait = max((called - waited_from).total_seconds() / 60, 0.0)
            hit = called - waited_from <= target
            visit = (finished - called).total_seconds() / 60 if finished is not None else None
            for bucket in cohort + ([counter] if counter else []):
                bucket.waits.append(wait)
                bucket.decided += 1
                bucket.within_target += hit
                bucket.served += status == "done"
                bucket.no_shows += status == "no_show"
                if visit is not None and status == "done":
                    bucket.visits.append(visit)
        elif status == "cancelled" and was_left:
            for bucket in cohort:
                bucket.abandoned += 1
                bucket.decided += 1
        elif status == "waiting" and now - waited_from > target:
            for bucket in cohort:
                bucket.decided += 1  # still waiting and already past the target: a miss

    forecast = forecast_by_interval(session, branch, first, last)
    interval_rows = []
    for starts_at in sorted(set(intervals) | set(forecast)):
        row = {"starts_at": starts_at.isoformat(),
               "local": starts_at.astimezone(branch.zone).strftime("%Y-%m-%d %H:%M"),
               **intervals.get(starts_at, Bucket()).as_dict()}
        row.update(forecast.get(starts_at, {"forecast": None, "forecast_p10": None, "forecast_p90": None}))
        interval_rows.append(row)
    service_rows = [{"service_id": s.id, "code": s.code, "name": s.name, **services[s.id].as_dict()}
                    for s in session.scalars(select(Service).where(Service.branch_id == branch.id)
                                             .order_by(Service.code)) if s.id in services]
    counter_rows = [{"counter_id": c.id, "name": c.name, **counters[c.id].as_dict()}
                    for c in session.scalars(select(Counter).where(Counter.branch_id == branch.id)
                                             .order_by(Counter.name)) if c.id in counters]
    day_rows = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        day_rows.append({"date": day.isoformat(), **days.get(day, Bucket()).as_dict()})
    return Stats(branch.slug, first, last, interval, rules.target_wait_minutes, rules.target, total.as_dict(),
                 day_rows, interval_rows, service_rows, counter_rows)


def forecast_by_interval(session: Session, branch: Branch, first: date, last: date) -> dict[datetime, dict]:
    """The forecast arrivals (walk-ins and bookings, all services) per interval start, with the 80 % band.

    The walk-in forecast is split over services in fixed shares, so summing each service's
    quantiles gives the quantiles of the total; bookings are known numbers.
    """
    totals: dict[datetime, list[float]] = {}
    for starts_at, mean, p10, p90, booked in session.execute(
        select(ArrivalForecast.starts_at, ArrivalForecast.walk_in_mean, ArrivalForecast.walk_in_p10,
               ArrivalForecast.walk_in_p90, ArrivalForecast.booking_mean)
        .where(ArrivalForecast.branch_id == branch.id, ArrivalForecast.local_date >= first,
               ArrivalForecast.local_date <= last)
    ):
        row = totals.setdefault(starts_at, [0.0, 0.0, 0.0])
        row[0] += mean + booked
        row[1] += p10 + booked
        row[2] += p90 + booked
    return {start: {"forecast": round(m, 2), "forecast_p10": round(lo, 2), "forecast_p90": round(hi, 2)}
            for start, (m, lo, hi) in totals.items()}


def today_live(session: Session, branch: Branch, now: datetime | None = None) -> dict:
    """Today so far, for the dashboard's live panel: queue now, waits, service level, forecast."""
    now = now or utcnow()
    today = numbering.local_day(now, branch.zone)
    stats = branch_stats(session, branch, today, today, now)
    waiting = session.scalar(select(_count()).where(Ticket.branch_id == branch.id, Ticket.local_date == today,
                                                    Ticket.status == "waiting"))
    serving = session.scalar(select(_count()).where(Ticket.branch_id == branch.id,
                                                    Ticket.status.in_(("called", "serving"))))
    open_counters = session.scalar(select(_count(Counter.id)).where(Counter.branch_id == branch.id,
                                                                    Counter.state == "open"))
    forecast_day = sum(r["forecast"] or 0 for r in stats.intervals)
    current = interval_start(now, branch, stats.interval_minutes)
    forecast_so_far = sum(r["forecast"] or 0 for r in stats.intervals
                          if datetime.fromisoformat(r["starts_at"]) + timedelta(minutes=stats.interval_minutes) <= now)
    elapsed = min(1.0, (now - current).total_seconds() / 60 / stats.interval_minutes)
    forecast_so_far += sum((r["forecast"] or 0) * elapsed
                           for r in stats.intervals if datetime.fromisoformat(r["starts_at"]) == current)
    return {
        "date": today.isoformat(), "at": now.astimezone(branch.zone).isoformat(timespec="seconds"),
        "waiting": waiting or 0, "serving": serving or 0, "open_counters": open_counters or 0,
        "arrivals": stats.total["arrivals"], "served": stats.total["served"], "abandoned": stats.total["abandoned"],
        "avg_wait": stats.total["avg_wait"], "p90_wait": stats.total["p90_wait"],
        "service_level": stats.total["service_level"], "target": stats.target,
        "target_wait_minutes": stats.target_wait_minutes,
        "forecast_day": round(forecast_day, 1) if any(r["forecast"] is not None for r in stats.intervals) else None,
        "forecast_so_far": round(forecast_so_far, 1),
        "intervals": [{k: r[k] for k in ("starts_at", "local", "arrivals", "forecast", "forecast_p10",
                                         "forecast_p90", "avg_wait", "service_level")} for r in stats.intervals],
    }


def _count(column=None):
    return func.count(column if column is not None else Ticket.id)


CSV_COLUMNS = ("arrivals", "walk_ins", "called", "served", "no_shows", "abandoned", "abandonment", "avg_wait",
               "p90_wait", "service_level", "avg_visit")


def csv_rows(stats: Stats) -> list[list]:
    """One table for the export: a `by` column (interval, day, service, counter, total), a key, the figures."""
    def figures(row):
        return ["" if row[c] is None else row[c] for c in CSV_COLUMNS]

    rows = [["by", "key", "name", *CSV_COLUMNS, "forecast", "forecast_p10", "forecast_p90"]]
    for row in stats.intervals:
        rows.append(["interval", row["local"], "", *figures(row),
                     *("" if row[c] is None else row[c] for c in ("forecast", "forecast_p10", "forecast_p90"))])
    for row in stats.days:
        rows.append(["day", row["date"], "", *figures(row), "", "", ""])
    for row in stats.services:
        rows.append(["service", row["code"], row["name"], *figures(row), "", "", ""])
    for row in stats.counters:
        rows.append(["counter", row["counter_id"], row["name"], *figures(row), "", "", ""])
    period = f"{stats.first.isoformat()}..{stats.last.isoformat()}"
    rows.append(["total", period, "", *figures(stats.total), "", "", ""])
    return [[spreadsheet_safe(cell) for cell in row] for row in rows]


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a service
# called `=HYPERLINK(...)` would become a link or worse. Text cells get a leading quote; numbers stay.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """The cell as a spreadsheet shows it but never evaluates it."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell



def planned_days(session: Session, branch: Branch, first: date, last: date) -> set[date]:
    """The local days from `first` to `last` that have a staffing plan."""
    return set(session.scalars(select(StaffingPlan.local_date).distinct()
                               .where(StaffingPlan.branch_id == branch.id, StaffingPlan.local_date >= first,
                                      StaffingPlan.local_date <= last)))
