"""What-if for a planned day: the waits per interval with a different number of counters.

A fast in-memory simulation (no database, no product code in the loop, unlike demo/simulation.py):

- arrivals: Poisson per interval and service with the forecast means (walk-ins and bookings),
  spread uniformly over the interval;
- visit lengths: drawn from each service's learned sample (estimate_learning.learned_for);
- patience: exponential with the learned rate of walk-ins giving up (none when nobody ever left);
- counters: the given number per interval, every counter serving every service, one queue in
  arrival order. When the number drops at an interval boundary, visits in progress finish.
  People still waiting at closing are served by the counters of the last interval.

Each replication draws its arrivals and visits from its own stream of one seeded generator
before it looks at the counters, so two runs with the same seed and different counters see the
same customers (common random numbers): more counters then never look worse by chance.
Returns per interval the mean wait, its 90th percentile and the service level (called within the
branch's target wait, over those called or who gave up), pooled over the replications.
"""
import bisect
import heapq
import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch
from queue_app.core.errors import Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.planning import plan as planning
from queue_app.planning.models import ArrivalForecast
from queue_app.tickets import estimate_learning

MAX_COUNTERS = 100
MAX_REPLICATIONS = 500
CUSTOMER_BUDGET = 80_000  # simulated visits per run, all replications together (well under a second)


@dataclass
class Interval:
    starts_at: datetime
    counters: int
    planned: int
    arrivals: dict[int, float]  # service id -> forecast mean


def day_intervals(session: Session, branch: Branch, day: date) -> list[Interval]:
    """The planned day: its intervals with the plan's counters (overrides included) and forecast arrivals."""
    plans = planning.plan_of_day(session, branch, day)
    if not plans:
        raise NotFound("plan_not_found", "No plan for that day; recompute the plan first.")
    arrivals: dict[datetime, dict[int, float]] = {}
    for starts_at, service_id, walk_ins, booked in session.execute(
        select(ArrivalForecast.starts_at, ArrivalForecast.service_id, ArrivalForecast.walk_in_mean,
               ArrivalForecast.booking_mean)
        .where(ArrivalForecast.branch_id == branch.id, ArrivalForecast.local_date == day)
    ):
        arrivals.setdefault(starts_at, {})[service_id] = (walk_ins or 0.0) + (booked or 0.0)
    return [Interval(p.starts_at, p.counters, p.counters, arrivals.get(p.starts_at, {})) for p in plans]


def apply_changes(intervals: list[Interval], offset=0, counters=None) -> list[Interval]:
    """The plan with a whole-day `offset` and/or explicit counters per interval ({ISO start or index: n}).

    Raises Invalid for anything that is not a whole number in range or names no interval of the day.
    """
    offset = _whole(offset, "offset", -MAX_COUNTERS, MAX_COUNTERS)
    explicit: dict[int, int] = {}
    if counters is None:
        counters = {}
    if isinstance(counters, list):
        if len(counters) != len(intervals):
            raise Invalid("invalid_field", "One number per interval of the day is needed.",
                          {"counters": [f"{len(intervals)} numbers."]})
        counters = {str(i): n for i, n in enumerate(counters) if n is not None and n != ""}
    if not isinstance(counters, dict):
        raise Invalid("invalid_field", "Counters are a list or an object.", {"counters": ["A list or an object."]})
    by_start = {i.starts_at: n for n, i in enumerate(intervals)}
    for key, value in counters.items():
        position = None
        if isinstance(key, str) and key.isdigit():
            position = int(key)
        else:
            try:
                moment = datetime.fromisoformat(str(key))
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                position = by_start.get(moment)
        if position is None or not 0 <= position < len(intervals):
            raise Invalid("invalid_field", "An interval that is not in the day's plan.", {"counters": [str(key)]})
        explicit[position] = _whole(value, "counters", 0, MAX_COUNTERS)
    changed = []
    for n, interval in enumerate(intervals):
        number = explicit.get(n, max(0, min(MAX_COUNTERS, interval.counters + offset)))
        changed.append(Interval(interval.starts_at, number, interval.planned, interval.arrivals))
    return changed


def _whole(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise Invalid("invalid_field", f"{name}: a whole number.", {name: ["A whole number."]})
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Invalid("invalid_field", f"{name}: a whole number.", {name: ["A whole number."]})
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise Invalid("invalid_field", f"{name}: a whole number from {low} to {high}.",
                      {name: [f"{low} to {high}."]})
    return int(number)


def simulate(intervals: list[Interval], interval_minutes: int, samples: dict[int, np.ndarray],
             patience_rate: float, target_minutes: float, replications: int = 200, seed: int = 0) -> list[dict]:
    """Waits per interval for the given counters; see the module docstring for the model."""
    if not intervals:
        return []
    replications = _whole(replications, "replications", 1, MAX_REPLICATIONS)
    expected = sum(sum(i.arrivals.values()) for i in intervals)
    replications = max(1, min(replications, int(CUSTOMER_BUDGET / max(expected, 1.0))))
    origin = intervals[0].starts_at
    # Interval boundaries in minutes from the day's first start (gaps, e.g. a lunch close, are kept).
    starts = [(i.starts_at - origin).total_seconds() / 60 for i in intervals]
    ends = [start + interval_minutes for start in starts]
    capacity = [i.counters for i in intervals]
    service_ids = sorted({s for i in intervals for s in i.arrivals})
    pools = {s: np.asarray(samples.get(s, np.array([10.0])), dtype=float) for s in service_ids}
    count = len(intervals)
    waits: list[list[float]] = [[] for _ in range(count)]
    hits = [0] * count
    decided = [0] * count
    abandoned = [0] * count
    arrived = [0] * count
    streams = np.random.SeedSequence(seed).spawn(replications)
    for stream in streams:
        rng = np.random.default_rng(stream)
        times, slots, visits, patience = [], [], [], []
        for n, interval in enumerate(intervals):
            for service_id in service_ids:
                mean = interval.arrivals.get(service_id, 0.0)
                k = int(rng.poisson(mean)) if mean > 0 else 0
                if not k:
                    continue
                times.extend(starts[n] + rng.random(k) * interval_minutes)
                slots.extend([n] * k)
                visits.extend(rng.choice(pools[service_id], size=k))
        k = len(times)
        if patience_rate > 0:
            patience = rng.exponential(1 / patience_rate, size=k)
        order = np.argsort(times, kind="stable")
        busy: list[float] = []  # end times of visits in progress
        last_start = -math.inf
        for index in order:
            arrival, n = float(times[index]), slots[index]
            arrived[n] += 1
            moment = max(arrival, last_start)
            give_up = arrival + patience[index] if patience_rate > 0 else math.inf
            start = _first_free(moment, busy, starts, ends, capacity)
            if start > give_up or math.isinf(start):  # gave up, or no counter opens again that day
                abandoned[n] += 1
                decided[n] += 1
                continue
            last_start = start
            heapq.heappush(busy, start + float(visits[index]))
            wait = start - arrival
            waits[n].append(wait)
            decided[n] += 1
            hits[n] += int(wait <= target_minutes)
    results = []
    for n, interval in enumerate(intervals):
        sample = np.array(waits[n], dtype=float)
        results.append({
            "starts_at": interval.starts_at.isoformat(), "counters": interval.counters, "planned": interval.planned,
            "arrivals": round(arrived[n] / replications, 2),
            "mean_wait": round(float(sample.mean()), 2) if len(sample) else None,
            "p90_wait": round(float(np.percentile(sample, 90)), 2) if len(sample) else None,
            "service_level": round(hits[n] / decided[n], 4) if decided[n] else None,
            "abandonment": round(abandoned[n] / arrived[n], 4) if arrived[n] else None,
        })
    return results


def _first_free(moment: float, busy: list[float], starts, ends, capacity) -> float:
    """The first time from `moment` on when fewer visits are in progress than counters are open.

    `busy` (a heap of end times) loses the visits that have ended by then.
    """
    last = len(starts) - 1
    while True:
        while busy and busy[0] <= moment:
            heapq.heappop(busy)
        position = bisect.bisect_right(starts, moment) - 1
        if position < 0:
            moment = starts[0]
            continue
        if moment >= ends[position] and position < last:
            moment = starts[position + 1]  # a gap in the day (closed): the next opening
            continue
        open_now = capacity[min(position, last)]
        if len(busy) < open_now:
            return moment
        # Wait for a visit to end or for the next interval (its counters may differ).
        candidates = [busy[0]] if busy else []
        if position < last:
            candidates.append(starts[position + 1])
        if not candidates:  # after closing with no counter at all: never served
            return math.inf
        moment = min(candidates)


def what_if(session: Session, branch: Branch, day: date, *, offset=0, counters=None, replications=200, seed=0,
            now: datetime | None = None) -> dict:
    """The day as planned and with the manager's changes, side by side (same customers in both)."""
    now = now or utcnow()
    rules = planning.planning_rules(branch)
    planned = day_intervals(session, branch, day)
    changed = apply_changes(planned, offset, counters)
    learned = estimate_learning.learned_for(session, branch, now)
    args = (rules.interval_minutes, learned.service_samples, learned.patience_rate, rules.target_wait_minutes)
    seed = _whole(seed, "seed", 0, 2**32 - 1)
    baseline = simulate(planned, *args, replications=replications, seed=seed)
    scenario = simulate(changed, *args, replications=replications, seed=seed)
    return {
        "date": day.isoformat(), "interval_minutes": rules.interval_minutes,
        "target_wait_minutes": rules.target_wait_minutes, "target": rules.target,
        "intervals": [{**s, "local": datetime.fromisoformat(s["starts_at"]).astimezone(branch.zone).strftime("%H:%M"),
                       "plan_mean_wait": b["mean_wait"], "plan_p90_wait": b["p90_wait"],
                       "plan_service_level": b["service_level"]}
                      for s, b in zip(scenario, baseline)],
        "counter_hours": round(sum(i.counters for i in changed) * rules.interval_minutes / 60, 1),
        "plan_counter_hours": round(sum(i.counters for i in planned) * rules.interval_minutes / 60, 1),
    }

