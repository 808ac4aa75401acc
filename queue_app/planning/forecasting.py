"""Arrival forecasts: how many people will come, per interval of the day, for the next weeks.

Counts at branch volume are small and over-dispersed, and automatic model selection (ETS and
friends) is fragile on intraday data, so the method is deliberately plain and robust:

1. A weekday x interval profile: for each interval of the day, the exponentially weighted mean
   of the same weekday's counts (recent weeks count more, half-life `half_life_weeks`), shrunk
   towards the all-weekday profile scaled to that weekday's level (few same-weekday days: more
   shrinkage).
2. A recent-level adjustment: the last days' actual totals against what the profile said for
   them, shrunk towards 1, scales the forecast (a branch getting busier is followed within days).
3. The spread is negative binomial, variance mean + phi mean^2, with phi estimated from the
   profile's own day-ahead errors over the last weeks (Poisson would be too narrow); p10 and
   p90 are its quantiles.
4. During the day, the rest of today is re-scaled by today's arrivals so far against the
   forecast so far (again shrunk, so two early customers do not double the afternoon).

`forecast_days` works on plain arrays (one row per day, one column per interval), so the CLI,
the benchmark and the branch planner share it; `branch_history` and `forecast_branch` read and
write the database.
"""
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

HALF_LIFE_WEEKS = 4.0
WEEKDAY_SHRINK_DAYS = 2.0  # same-weekday days' worth of weight on the pooled profile
LEVEL_DAYS = 5  # recent days whose totals adjust the level
LEVEL_SHRINK = 0.5  # weight of the level adjustment (0: none, 1: full)
DISPERSION_DAYS = 20  # day-ahead errors used to estimate the negative-binomial spread
TODAY_PRIOR_SHARE = 0.3  # today's re-scaling counts the forecast so far as this share of a day


@dataclass
class DayForecast:
    day: date
    mean: np.ndarray
    p10: np.ndarray
    p90: np.ndarray


def _weights(days: list[date], target: date, half_life_weeks: float) -> np.ndarray:
    ages = np.array([(target - d).days for d in days], dtype=float)
    return 0.5 ** (ages / (7 * half_life_weeks))


def profile_mean(days: list[date], counts: np.ndarray, target: date,
                 half_life_weeks: float = HALF_LIFE_WEEKS) -> np.ndarray:
    """Expected counts per interval on `target` from the days before it (rows of `counts`)."""
    if not days:
        return np.zeros(counts.shape[1] if counts.ndim == 2 else 0)
    weights = _weights(days, target, half_life_weeks)
    pooled = np.average(counts, axis=0, weights=weights)
    same = np.array([d.weekday() == target.weekday() for d in days])
    if not same.any():
        return pooled
    same_weights = weights[same]
    weekday_mean = np.average(counts[same], axis=0, weights=same_weights)
    # The pooled profile, scaled to this weekday's level, is what little weekday data shrinks to.
    pooled_total, weekday_total = pooled.sum(), weekday_mean.sum()
    scaled = pooled * (weekday_total / pooled_total) if pooled_total > 0 else pooled
    effective = same_weights.sum() ** 2 / (same_weights ** 2).sum()  # Kish effective sample size
    return (effective * weekday_mean + WEEKDAY_SHRINK_DAYS * scaled) / (effective + WEEKDAY_SHRINK_DAYS)


def level_factor(days: list[date], counts: np.ndarray, target: date) -> float:
    """How the last few days ran against the profile (their own day-ahead forecasts), shrunk."""
    recent = [i for i, d in enumerate(days) if d < target][-LEVEL_DAYS:]
    actual, expected = 0.0, 0.0
    for i in recent:
        earlier = days[:i]
        if len(earlier) < 5:
            continue
        expected += profile_mean(earlier, counts[:i], days[i]).sum()
        actual += counts[i].sum()
    if expected <= 0:
        return 1.0
    return 1 + LEVEL_SHRINK * (actual / expected - 1)


def point_forecast(days: list[date], counts: np.ndarray, target: date) -> np.ndarray:
    earlier = [i for i, d in enumerate(days) if d < target]
    days_before, counts_before = [days[i] for i in earlier], counts[earlier]
    return profile_mean(days_before, counts_before, target) * level_factor(days_before, counts_before, target)


def dispersion(days: list[date], counts: np.ndarray) -> float:
    """phi of the negative binomial (variance = mean + phi mean^2) from day-ahead errors."""
    squares, excess = 0.0, 0.0
    for i in range(max(7, len(days) - DISPERSION_DAYS), len(days)):
        mean = point_forecast(days[:i], counts[:i], days[i])
        excess += float((((counts[i] - mean) ** 2) - mean).sum())
        squares += float((mean ** 2).sum())
    return max(0.0, excess / squares) if squares > 0 else 0.0


def nb_quantile(mean: float, phi: float, q: float) -> float:
    """Quantile of a negative binomial (Poisson when phi is 0), interpolated between integers so
    that small counts still get a usable band."""
    if mean <= 0:
        return 0.0
    if phi <= 1e-9:
        probability = math.exp(-mean)
        step = lambda k, p: p * mean / (k + 1)  # noqa: E731
    else:
        size = 1 / phi
        success = size / (size + mean)
        probability = success ** size
        step = lambda k, p: p * (k + size) / (k + 1) * (1 - success)  # noqa: E731
    cumulative, k = probability, 0
    previous = 0.0
    while cumulative < q and k < 100_000:
        previous = cumulative
        probability = step(k, probability)
        k += 1
        cumulative += probability
    # Linear interpolation within the step from k-1 to k (a mid-distribution quantile).
    if k == 0 or cumulative == previous:
        return float(k)
    return k - 1 + (q - previous) / (cumulative - previous)


def forecast_days(days: list[date], counts: np.ndarray, targets: list[date]) -> list[DayForecast]:
    """Forecasts for target days from history rows (one per open day, same intervals)."""
    days = list(days)
    counts = np.asarray(counts, dtype=float)
    phi = dispersion(days, counts) if len(days) > 8 else 0.3
    result = []
    for target in targets:
        mean = point_forecast(days, counts, target)
        p10 = np.array([nb_quantile(m, phi, 0.10) for m in mean])
        p90 = np.array([nb_quantile(m, phi, 0.90) for m in mean])
        result.append(DayForecast(target, mean, p10, p90))
    return result


def rescale_today(forecast: np.ndarray, observed: np.ndarray, done: int) -> np.ndarray:
    """Re-scale intervals from `done` on by today's arrivals so far against the forecast so far."""
    if done <= 0:
        return forecast
    expected, actual = forecast[:done].sum(), observed[:done].sum()
    prior = TODAY_PRIOR_SHARE * forecast.sum()
    factor = (actual + prior) / (expected + prior) if expected + prior > 0 else 1.0
    result = forecast.copy()
    result[done:] *= factor
    return result


# --- CSV: the planner's command line ----------------------------------------------------------------

def series_from_rows(rows: list[tuple[datetime, float]], interval_minutes: int):
    """Counts per local day and interval of the day from (start, count) rows (any finer grid)."""
    slots: dict[date, dict[int, float]] = {}
    for start, count in rows:
        slot = (start.hour * 60 + start.minute) // interval_minutes
        slots.setdefault(start.date(), {}).setdefault(slot, 0.0)
        slots[start.date()][slot] += count
    if not slots:
        return [], np.zeros((0, 0)), []
    used = sorted({s for day in slots.values() for s in day})
    first, last = used[0], used[-1]
    grid = list(range(first, last + 1))
    days = sorted(slots)
    counts = np.array([[slots[d].get(s, 0.0) for s in grid] for d in days])
    return days, counts, grid


def next_open_days(days: list[date], count: int) -> list[date]:
    """The next `count` days after the history that fall on weekdays the history has."""
    weekdays = {d.weekday() for d in days}
    result, day = [], days[-1]
    while len(result) < count:
        day += timedelta(days=1)
        if day.weekday() in weekdays:
            result.append(day)
    return result
