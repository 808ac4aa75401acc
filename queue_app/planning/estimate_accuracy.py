"""How good were the wait estimates? The estimate shown at issue against the wait that followed,
for the manager dashboard, the stats API and the daily close: plain functions over a session.

Definitions (the page, the API, the docs and bench/wait_estimates.py agree):

- A pair is a walk-in ticket (priority other than "appointment") of the branch, issued on one of
  the branch-local days of the range, with the estimate it was shown (estimate_minutes, and the
  80 % range estimate_low..estimate_high) and a first call (called_at): called, done, no-show.
  Holders who gave up before a call have no wait and are not pairs; bookings wait for their
  booked start, not for an estimate.
- Actual wait: called_at - issued_at, in minutes.
- Error: estimate minus actual. Bias is its mean (positive: estimates too long); mean absolute
  error is the mean of its size.
- Within range: estimate_low <= actual <= estimate_high (bounds included), counted among the
  pairs that waited at all (actual > 0), `waited`; the same coverage as the benchmark's.
- Band: ESTIMATE_BANDS of the shown estimate (the bands the self-correction works in).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.catalogue.models import Branch, Service
from queue_app.planning import reports
from queue_app.tickets import numbering
from queue_app.tickets.estimate_calibration import ESTIMATE_BANDS, band_of
from queue_app.tickets.models import Ticket

# Chart points per whole estimated minute below this; longer estimates share one last point, so
# the chart stays a few dozen points however many tickets the range holds.
CHART_CAP_MINUTES = 60

# The daily close warns when the 80 % range held for less than 70 % or more than 90 % of waits on
# each of the last DRIFT_DAYS closed days with enough waits to judge; thinner days are skipped
# (a quiet Sunday neither starts nor breaks a run), looking back at most DRIFT_LOOKBACK_DAYS.
DRIFT_LOW, DRIFT_HIGH = 0.70, 0.90
DRIFT_DAYS = 3
DRIFT_MIN_WAITED = 20
DRIFT_LOOKBACK_DAYS = 14


@dataclass
class Pairs:
    """Estimates and the waits that followed, for one group (total, band, service, day)."""

    estimates: list = field(default_factory=list)
    actuals: list = field(default_factory=list)
    lows: list = field(default_factory=list)
    highs: list = field(default_factory=list)

    def add(self, estimate: int, low: int | None, high: int | None, actual: float) -> None:
        self.estimates.append(estimate)
        self.actuals.append(actual)
        # A missing bound cannot hold the wait: such a pair counts as outside the range.
        self.lows.append(np.nan if low is None else low)
        self.highs.append(np.nan if high is None else high)

    def coverage(self) -> tuple[int, int]:
        """(waited, within range among them)."""
        actual = np.array(self.actuals, dtype=float)
        waited = actual > 0
        low, high = np.array(self.lows, dtype=float)[waited], np.array(self.highs, dtype=float)[waited]
        inside = (low <= actual[waited]) & (actual[waited] <= high)
        return int(waited.sum()), int(inside.sum())

    def as_dict(self) -> dict:
        if not self.estimates:
            return {"pairs": 0, "waited": 0, "within_range": None, "mean_estimate": None, "mean_actual": None,
                    "mean_absolute_error": None, "bias": None}
        estimate, actual = np.array(self.estimates, dtype=float), np.array(self.actuals, dtype=float)
        error = estimate - actual
        waited, inside = self.coverage()
        return {
            "pairs": len(self.estimates),
            "waited": waited,
            "within_range": round(inside / waited, 4) if waited else None,
            "mean_estimate": _round(estimate.mean()),
            "mean_actual": _round(actual.mean()),
            "mean_absolute_error": _round(np.abs(error).mean()),
            "bias": _round(error.mean()),
        }


def _round(minutes) -> float:
    return round(float(minutes), 2)


def _band_high(high: float) -> float | None:
    return None if high == float("inf") else high


@dataclass
class EstimateAccuracy:
    branch: str
    first: date
    last: date
    total: dict
    bands: list[dict]
    services: list[dict]
    days: list[dict]
    chart: dict

    def as_dict(self) -> dict:
        return {"branch": self.branch, "from": self.first.isoformat(), "to": self.last.isoformat(),
                "total": self.total, "bands": self.bands, "services": self.services, "days": self.days,
                "chart": self.chart}


def _pair_rows(session: Session, branch: Branch, first: date, last: date):
    """(local day, service id, estimate, low, high, actual minutes) of every pair of the days."""
    rows = session.execute(
        select(Ticket.local_date, Ticket.service_id, Ticket.estimate_minutes, Ticket.estimate_low,
               Ticket.estimate_high, Ticket.issued_at, Ticket.called_at)
        .where(Ticket.branch_id == branch.id, Ticket.local_date >= first, Ticket.local_date <= last,
               Ticket.priority != "appointment", Ticket.estimate_minutes.is_not(None), Ticket.called_at.is_not(None))
    ).all()
    for day, service_id, estimate, low, high, issued, called in rows:
        yield day, service_id, estimate, low, high, max((called - issued).total_seconds() / 60, 0.0)


def estimate_accuracy(session: Session, branch: Branch, first: date, last: date, now: datetime) -> EstimateAccuracy:
    """The estimates of the branch's local days `first`..`last` (inclusive) against the waits that followed."""
    first, last = reports.parse_range(first.isoformat(), last.isoformat(), last)  # same limits as the stats
    today = numbering.local_day(now, branch.zone)
    total, bands, services, days = Pairs(), [Pairs() for _ in ESTIMATE_BANDS], {}, {}
    chart: dict[int, list[float]] = {}
    for day, service_id, estimate, low, high, actual in _pair_rows(session, branch, first, last):
        for group in (total, bands[band_of(estimate)], services.setdefault(service_id, Pairs()),
                      days.setdefault(day, Pairs())):
            group.add(estimate, low, high, actual)
        chart.setdefault(min(max(estimate, 0), CHART_CAP_MINUTES), []).append(actual)

    band_rows = [{"band": name, "low": low, "high": _band_high(high), **bands[index].as_dict()}
                 for index, (name, low, high) in enumerate(ESTIMATE_BANDS)]
    service_rows = [{"service_id": s.id, "code": s.code, "name": s.name, **services[s.id].as_dict()}
                    for s in session.scalars(select(Service).where(Service.branch_id == branch.id)
                                             .order_by(Service.code)) if s.id in services]
    day_rows = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        day_rows.append({"date": day.isoformat(), "closed": day < today, **days.get(day, Pairs()).as_dict()})
    points = []
    for estimate in sorted(chart):
        actual = np.array(chart[estimate], dtype=float)
        points.append({"estimate": estimate, "and_longer": estimate == CHART_CAP_MINUTES, "pairs": len(actual),
                       "mean_actual": _round(actual.mean()), "p10_actual": _round(np.percentile(actual, 10)),
                       "p90_actual": _round(np.percentile(actual, 90))})
    return EstimateAccuracy(branch.slug, first, last, total.as_dict(), band_rows, service_rows, day_rows,
                            {"cap_minutes": CHART_CAP_MINUTES, "points": points})


@dataclass
class CoverageDrift:
    """Three closed days on which the 80 % range held for too few or too many waits."""

    branch: str
    days: list[date]
    shares: list[float]

    def message(self) -> str:
        shares = ", ".join(f"{share:.2f}" for share in self.shares)
        return (f"estimate coverage drift at {self.branch}: {shares} on {self.days[0].isoformat()}.."
                f"{self.days[-1].isoformat()} (target {DRIFT_LOW:.2f}-{DRIFT_HIGH:.2f})")


def coverage_drift(session: Session, branch: Branch, now: datetime) -> CoverageDrift | None:
    """The drift of the branch's last DRIFT_DAYS closed days with DRIFT_MIN_WAITED waits or more, if
    the share within range was outside DRIFT_LOW..DRIFT_HIGH on every one of them; else None."""
    today = numbering.local_day(now, branch.zone)
    first, last = today - timedelta(days=DRIFT_LOOKBACK_DAYS), today - timedelta(days=1)
    days: dict[date, Pairs] = {}
    for day, _service, estimate, low, high, actual in _pair_rows(session, branch, first, last):
        days.setdefault(day, Pairs()).add(estimate, low, high, actual)
    judged = []
    for day in sorted(days, reverse=True):
        waited, inside = days[day].coverage()
        if waited >= DRIFT_MIN_WAITED:
            judged.append((day, inside / waited))
        if len(judged) == DRIFT_DAYS:
            break
    if len(judged) < DRIFT_DAYS or any(DRIFT_LOW <= share <= DRIFT_HIGH for _, share in judged):
        return None
    judged.reverse()
    return CoverageDrift(branch.slug, [day for day, _ in judged], [share for _, share in judged])
