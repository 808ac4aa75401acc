"""The branch's plan: forecast arrivals, counters per interval, and booking capacity.

From the ticket history (walk-ins) and the bookings, `forecast_branch` writes ArrivalForecast rows
for the next `horizon_days` open days (forecasting.py does the statistics; the walk-in total is
forecast and split by each service's recent share, since per-service counts are too thin).
`plan_branch` turns them into StaffingPlan rows: per interval the fewest counters that meet the
branch's target (Erlang A with the learned patience, Erlang C without), and the booking capacity
those counters leave after the forecast walk-in load and the manager's walk-in reserve, counting
no more counters than the branch has on shift then (each counter's planned hours).

Long visits make period-by-period staffing under-staff after a peak (people who arrived in the
peak are still being served), so the load staffed for is the offered load of an infinite-server
queue, m(t) = sum over earlier intervals of arrivals x P(visit still running), not arrivals x
mean visit of the interval alone.

Everything is idempotent by data: re-running replaces computed columns and never touches a
manager's overrides.
"""
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core import day_range
from queue_app.core.errors import N_, Invalid, Message, NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.planning import forecasting
from queue_app.planning.models import ArrivalForecast, StaffingPlan
from queue_app.planning.staffing import staff_for
from queue_app.tickets import estimate_learning, numbering
from queue_app.tickets.models import Ticket


@dataclass(frozen=True)
class PlanningRules:
    interval_minutes: int = 30
    target: float = 0.8  # share called within target_wait_minutes
    target_wait_minutes: int = 10
    max_abandon: float = 0.05
    walk_in_reserve: float = 0.3  # share of counter capacity kept for walk-ins beyond the forecast
    horizon_days: int = 14
    history_days: int = 84

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def planning_rules(branch: Branch) -> PlanningRules:
    known = {f.name: f.type for f in fields(PlanningRules)}
    values = {}
    for key, value in (branch.planning_rules or {}).items():
        if key in known:
            values[key] = float(value) if key in ("target", "max_abandon", "walk_in_reserve") else int(value)
    return PlanningRules(**values)


def check_rules(values: dict) -> dict:
    """Validated planning rules from a form or the API (only known keys, sane ranges)."""
    limits = {"interval_minutes": (15, 60), "target": (0.05, 0.99), "target_wait_minutes": (1, 120),
              "max_abandon": (0.0, 0.5), "walk_in_reserve": (0.0, 1.0), "horizon_days": (1, 28),
              "history_days": (14, 365)}
    clean, errors = {}, {}
    for key, value in values.items():
        if key not in limits:
            errors[key] = [Message(N_("Unknown setting."))]
            continue
        low, high = limits[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            errors[key] = [Message(N_("A number is needed."))]
            continue
        if not low <= number <= high:
            errors[key] = [Message(N_("Between %(low)s and %(high)s."), low=f"{low:g}", high=f"{high:g}")]
            continue
        clean[key] = number if isinstance(low, float) else int(number)
    if "interval_minutes" in clean and clean["interval_minutes"] not in (15, 30, 60):
        errors["interval_minutes"] = [Message(N_("15, 30 or 60."))]
    if errors:
        raise Invalid("invalid_field", "Some planning settings are not valid.", errors)
    return clean


# --- the day's grid -----------------------------------------------------------------------------------

def day_grid(branch: Branch, day: date, interval: int) -> list[datetime]:
    """UTC starts of the day's intervals within the opening hours."""
    if branch.is_closed_on(day):
        return []
    starts = []
    for opens, closes in hours.day_intervals(branch.opening_hours, day, branch.zone):
        moment = opens
        while moment < closes:
            starts.append(moment)
            moment += timedelta(minutes=interval)
    return starts


def _slot_of(moment: datetime, branch: Branch, interval: int) -> int:
    local = moment.astimezone(branch.zone)
    return (local.hour * 60 + local.minute) // interval


def _day_slots(branch: Branch, interval: int) -> list[int]:
    """Slots of the day (minute of day // interval) any weekday's opening hours cover."""
    slots = set()
    for spans in (branch.opening_hours or {}).values():
        for opens, closes in spans:
            first = time.fromisoformat(opens)
            end = 24 * 60 if closes == "24:00" else time.fromisoformat(closes).hour * 60 + time.fromisoformat(closes).minute
            minute = first.hour * 60 + first.minute
            while minute < end:
                slots.add(minute // interval)
                minute += interval
    return sorted(slots)


# --- forecast ---------------------------------------------------------------------------------------------

def walk_in_history(session: Session, branch: Branch, until: date, rules: PlanningRules):
    """Walk-ins per open day (rows) and slot of the day (columns) before `until`, and per service."""
    interval = rules.interval_minutes
    slots = _day_slots(branch, interval)
    index = {slot: i for i, slot in enumerate(slots)}
    first = until - timedelta(days=rules.history_days)
    rows = session.execute(
        select(Ticket.local_date, Ticket.issued_at, Ticket.service_id)
        .where(Ticket.branch_id == branch.id, Ticket.priority != "appointment",
               Ticket.local_date >= first, Ticket.local_date < until)
    ).all()
    open_days = [first + timedelta(days=i) for i in range((until - first).days)]
    open_days = [d for d in open_days if day_grid(branch, d, interval)]
    day_index = {d: i for i, d in enumerate(open_days)}
    counts = np.zeros((len(open_days), len(slots)))
    by_service: dict[int, int] = {}
    for local_date, issued_at, service_id in rows:
        slot = index.get(_slot_of(issued_at, branch, interval))
        if local_date in day_index and slot is not None:
            counts[day_index[local_date], slot] += 1
            by_service[service_id] = by_service.get(service_id, 0) + 1
    # Days with no ticket at all before the branch started using the system are not history.
    used = [i for i in range(len(open_days)) if counts[i].sum() > 0]
    if used:
        start = used[0]
        open_days, counts = open_days[start:], counts[start:]
    else:
        open_days, counts = [], counts[:0]
    return open_days, counts, slots, by_service


def forecast_branch(session: Session, branch: Branch, now: datetime | None = None) -> int:
    """Write the next horizon's ArrivalForecast rows; returns how many intervals were forecast."""
    now = now or utcnow()
    rules = planning_rules(branch)
    interval = rules.interval_minutes
    today = numbering.local_day(now, branch.zone)
    days, counts, slots, by_service = walk_in_history(session, branch, today, rules)
    services = session.scalars(select(Service).where(Service.branch_id == branch.id, Service.active.is_(True))).all()
    walk_in_services = [s for s in services if s.walk_in_enabled]
    total = sum(by_service.get(s.id, 0) for s in walk_in_services)
    share = {s.id: (by_service.get(s.id, 0) + 1) / (total + len(walk_in_services)) for s in walk_in_services}
    targets = [today + timedelta(days=i) for i in range(rules.horizon_days)]
    targets = [d for d in targets if day_grid(branch, d, interval)]
    if len(days) < 7:
        # No usable history yet: no forecast and no plan rather than made-up numbers (booking
        # capacity then follows the open counters).
        return 0
    forecasts = {f.day: f for f in forecasting.forecast_days(days, counts, targets)}
    booked = _bookings_per_interval(session, branch, targets, interval)
    index = {slot: i for i, slot in enumerate(slots)}
    written = 0
    with write_transaction(session):
        # Rows on another grid (the interval setting changed) would sit beside the new ones.
        for model in (ArrivalForecast, StaffingPlan):
            session.execute(delete(model).where(model.branch_id == branch.id, model.local_date >= today,
                                                model.minutes != interval))
        for day in targets:
            grid = day_grid(branch, day, interval)
            forecast = forecasts.get(day)
            if forecast is not None and day == today:
                observed = _today_so_far(session, branch, today, slots, interval)
                done = sum(1 for start in grid if start + timedelta(minutes=interval) <= now)
                forecast.mean = forecasting.rescale_today(forecast.mean, observed, index.get(
                    _slot_of(grid[done], branch, interval), len(slots)) if done < len(grid) else len(slots))
            for start in grid:
                column = index.get(_slot_of(start, branch, interval))
                for service in services:
                    mean = p10 = p90 = 0.0
                    if forecast is not None and column is not None and service.id in share:
                        mean = float(forecast.mean[column]) * share[service.id]
                        p10 = float(forecast.p10[column]) * share[service.id]
                        p90 = float(forecast.p90[column]) * share[service.id]
                    _upsert(session, ArrivalForecast, ["branch_id", "service_id", "starts_at"], {
                        "branch_id": branch.id, "service_id": service.id, "local_date": day, "starts_at": start,
                        "minutes": interval, "walk_in_mean": mean, "walk_in_p10": p10, "walk_in_p90": p90,
                        "booking_mean": float(booked.get((service.id, start), 0)), "computed_at": now,
                    })
                written += 1
    return written


def _today_so_far(session, branch, today, slots, interval) -> np.ndarray:
    index = {slot: i for i, slot in enumerate(slots)}
    observed = np.zeros(len(slots))
    for issued_at, in session.execute(
        select(Ticket.issued_at).where(Ticket.branch_id == branch.id, Ticket.local_date == today,
                                       Ticket.priority != "appointment")
    ):
        slot = index.get(_slot_of(issued_at, branch, interval))
        if slot is not None:
            observed[slot] += 1
    return observed


def _bookings_per_interval(session, branch, days, interval) -> dict[tuple[int, datetime], int]:
    if not days:
        return {}
    booked: dict[tuple[int, datetime], int] = {}
    grids = {d: day_grid(branch, d, interval) for d in days}
    for service_id, start_at, local_date in session.execute(
        select(Appointment.service_id, Appointment.start_at, Appointment.local_date)
        .where(Appointment.branch_id == branch.id, Appointment.local_date >= days[0],
               Appointment.local_date <= days[-1], Appointment.status.in_(("booked", "checked_in")))
    ):
        for start in grids.get(local_date, []):
            if start <= start_at < start + timedelta(minutes=interval):
                booked[(service_id, start)] = booked.get((service_id, start), 0) + 1
                break
    return booked


def _upsert(session: Session, model, keys: list[str], values: dict, keep: tuple[str, ...] = ()) -> None:
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    statement = insert(model).values(**values)
    update = {k: v for k, v in values.items() if k not in keys and k not in keep}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=update))


# --- staffing plan ---------------------------------------------------------------------------------------

def offered_load(arrivals: np.ndarray, interval: float, survival) -> np.ndarray:
    """Mean number of visits in progress per interval (infinite-server offered load).

    An arrival at a random moment of interval i-k is still at a counter at a random moment of
    interval i with probability E[S((k + U1 - U2) x interval)] (zero before it arrives); with
    steady arrivals this sums to arrivals per minute x mean visit (Little's law).
    """
    grid = (np.arange(16) + 0.5) / 16
    offsets = (grid[:, None] - grid[None, :]).ravel()  # U1 - U2 on a grid
    load = np.zeros(len(arrivals))
    for k in range(len(arrivals)):
        lags = (k + offsets) * interval
        alive = survival(np.maximum(lags, 0))
        # Zero lag (same moment on the grid) is arrived-or-not with equal chance: half counts.
        weight = float(np.mean(np.where(lags > 0, alive, np.where(lags == 0, 0.5 * alive, 0.0))))
        if weight < 1e-6 and k > 0:
            break
        load[k:] += arrivals[:len(arrivals) - k] * weight
    return load


def plan_day(arrivals: np.ndarray, walk_ins: np.ndarray, interval: int, aht: float, patience: float | None,
             rules: PlanningRules, lag_correction: bool = True,
             on_shift: np.ndarray | None = None) -> tuple[np.ndarray, list[int], list[int]]:
    """Offered load, counters and booking capacity per interval of one day (pure; the benchmark
    also calls it with `lag_correction=False` for plain interval-by-interval staffing).

    `on_shift` is the counters the branch has on shift in each interval (a counter there for part
    of it counts that part). Bookings are offered on the counters that will serve them: the
    fewer of those needed and those on shift. A branch short of counters in a peak offers no
    bookings then, instead of seating booked visits ahead of a walk-in line it cannot serve."""
    if lag_correction:
        load = offered_load(arrivals, interval, lambda minutes: np.exp(-minutes / aht))
    else:
        load = arrivals / interval * aht
    counters, slots = [], []
    for position in range(len(arrivals)):
        # Staff for the offered load: the arrival rate that gives it with this visit length.
        rate = load[position] / aht * 60
        needed = 0
        if rate > 0:
            needed = staff_for(rate, aht, rules.target, rules.target_wait_minutes * 60, patience,
                               rules.max_abandon).counters
        # Within opening hours at least one counter is open, however quiet the forecast.
        needed = max(1, needed)
        walk_in_load = walk_ins[position] / interval * aht
        counters.append(needed)
        serving = needed if on_shift is None else min(needed, float(on_shift[position]))
        slots.append(max(0, round(serving * (1 - rules.walk_in_reserve) - walk_in_load)))
    return load, counters, slots


def plan_branch(session: Session, branch: Branch, now: datetime | None = None) -> int:
    """Forecast, then write StaffingPlan rows for the horizon; returns the intervals planned."""
    now = now or utcnow()
    forecast_branch(session, branch, now)
    rules = planning_rules(branch)
    interval = rules.interval_minutes
    learned = estimate_learning.learned_for(session, branch, now)
    today = numbering.local_day(now, branch.zone)
    rows = session.execute(
        select(ArrivalForecast.starts_at, ArrivalForecast.local_date, ArrivalForecast.service_id,
               ArrivalForecast.walk_in_mean, ArrivalForecast.booking_mean)
        .where(ArrivalForecast.branch_id == branch.id, ArrivalForecast.local_date >= today)
        .order_by(ArrivalForecast.starts_at)
    ).all()
    by_day: dict[date, dict[datetime, dict[int, tuple[float, float]]]] = {}
    for starts_at, local_date, service_id, walk_ins, bookings in rows:
        by_day.setdefault(local_date, {}).setdefault(starts_at, {})[service_id] = (walk_ins, bookings)
    patience = 1 / learned.patience_rate if learned.patience_rate > 0 else None
    counter_hours = [counter.shifts or branch.opening_hours for counter in
                     session.scalars(select(Counter).where(Counter.branch_id == branch.id))]
    planned = 0
    with write_transaction(session):
        for day, intervals in sorted(by_day.items()):
            starts = sorted(intervals)
            arrivals = np.array([sum(w + b for w, b in intervals[s].values()) for s in starts])
            walk_ins = np.array([sum(w for w, _ in intervals[s].values()) for s in starts])
            # The mean visit of the day's mix (each service's learned mean, weighted by its arrivals).
            weights = {}
            for per_service in intervals.values():
                for service_id, (w, b) in per_service.items():
                    weights[service_id] = weights.get(service_id, 0.0) + w + b
            total = sum(weights.values())
            aht = (sum(learned.service_means.get(s, 10.0) * v for s, v in weights.items()) / total
                   if total > 0 else float(np.mean(list(learned.service_means.values()) or [10.0])))
            on_shift = counters_on_shift(counter_hours, day, branch.zone, starts, interval)
            load, counters, slots = plan_day(arrivals, walk_ins, interval, aht, patience, rules, on_shift=on_shift)
            for position, start in enumerate(starts):
                _upsert(session, StaffingPlan, ["branch_id", "starts_at"], {
                    "branch_id": branch.id, "local_date": day, "starts_at": start, "minutes": interval,
                    "forecast_arrivals": float(arrivals[position]), "offered_load": float(load[position]),
                    "counters_planned": int(counters[position]), "booking_slots": int(slots[position]),
                    "computed_at": now,
                }, keep=("counters_override", "booking_slots_override"))
                planned += 1
    return planned


def counters_on_shift(counter_hours: list[dict], day: date, zone, starts: list[datetime],
                      interval: int) -> np.ndarray:
    """Counters on shift in each interval starting at `starts` (UTC) on local `day`: each counter's
    planned hours (its shifts, else the branch's hours), a counter there for part of an interval
    counting that part."""
    length = timedelta(minutes=interval)
    windows = [hours.day_intervals(plan, day, zone) for plan in counter_hours]
    covered = np.zeros(len(starts))
    for position, start in enumerate(starts):
        end = start + length
        for shifts in windows:
            overlap = sum((max(timedelta(0), min(end, to) - max(start, since)) for since, to in shifts), timedelta(0))
            covered[position] += min(1.0, overlap / length)
    return covered


def set_override(session: Session, branch: Branch, starts_at: datetime, *, counters: int | None = None,
                 booking_slots: int | None = None, clear: bool = False) -> StaffingPlan:
    """A manager's numbers for one interval; they survive every recompute until cleared."""
    for name, value in (("counters", counters), ("booking_slots", booking_slots)):
        if value is not None and not 0 <= value <= 500:
            raise Invalid("invalid_field", f"{name}: 0 to 500.", {name: ["0 to 500."]})
    if not day_range.in_range(starts_at):  # no plan there, and year 1 or 9999 would overflow in the query
        raise NotFound("plan_not_found", "No plan for that interval; recompute the plan first.")
    with write_transaction(session):
        plan = session.scalar(select(StaffingPlan).where(StaffingPlan.branch_id == branch.id,
                                                         StaffingPlan.starts_at == starts_at))
        if plan is None:
            raise NotFound("plan_not_found", "No plan for that interval; recompute the plan first.")
        if clear:
            plan.counters_override = plan.booking_slots_override = None
        else:
            if counters is not None:
                plan.counters_override = counters
            if booking_slots is not None:
                plan.booking_slots_override = booking_slots
    return plan


def plan_of_day(session: Session, branch: Branch, day: date) -> list[StaffingPlan]:
    return session.scalars(select(StaffingPlan).where(StaffingPlan.branch_id == branch.id,
                                                      StaffingPlan.local_date == day)
                           .order_by(StaffingPlan.starts_at)).all()


def booking_capacity(session: Session, branch_id: int, starts: list[datetime]) -> dict[datetime, int]:
    """Bookings that may overlap each grid start, where a plan covers it (else absent)."""
    if not starts:
        return {}
    plans = session.execute(
        select(StaffingPlan.starts_at, StaffingPlan.minutes, StaffingPlan.booking_slots,
               StaffingPlan.booking_slots_override)
        .where(StaffingPlan.branch_id == branch_id, StaffingPlan.starts_at <= max(starts),
               StaffingPlan.starts_at > min(starts) - timedelta(hours=2))
    ).all()
    capacity = {}
    for at in starts:
        for start, minutes, slots, override in plans:
            if start <= at < start + timedelta(minutes=minutes):
                capacity[at] = override if override is not None else slots
                break
    return capacity


def has_plan(session: Session, branch_id: int) -> bool:
    return bool(session.scalar(select(func.count(StaffingPlan.id)).where(StaffingPlan.branch_id == branch_id)))
