"""Self-correcting wait estimates: the branch's own recent pairs of (estimate at issue, wait that
followed) correct the estimator's bias and the width of its 80 % range, by band of estimate."""
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.tickets.models import Ticket

# Bands of estimated minutes, [low, high): the calibration corrects each band on its own, and the
# managers' accuracy report groups by the same bands.
ESTIMATE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-5", 0.0, 5.0), ("5-15", 5.0, 15.0), ("15-30", 15.0, 30.0), ("30-60", 30.0, 60.0), ("60+", 60.0, math.inf),
)


def band_of(minutes: float) -> int:
    """Index into ESTIMATE_BANDS of an estimate in minutes."""
    for index, (_, low, high) in enumerate(ESTIMATE_BANDS):
        if minutes < high:
            return index if minutes >= low else 0
    return len(ESTIMATE_BANDS) - 1


# --- the correction --------------------------------------------------------------------------------
# Split conformal calibration by band, on the estimator's own (uncorrected) figures kept on each
# ticket at issue (Ticket.model_mean/low/high) and the waits that followed:
#
# - the point estimate moves by the band's mean error (the mean is what minimises squared error),
#   shrunk by SHIFT_PRIOR_PAIRS pairs' weight of no error, less SHIFT_STANDARD_ERRORS standard
#   errors of that mean (soft thresholding: the prior that most bands need no correction). A
#   clear error is corrected nearly whole, one within the noise of few or scattered pairs not at
#   all. (Shifting by the raw mean cut long estimates on a few dozen scattered pairs and made them
#   worse for the customers who then waited longest: bench/wait_estimates.py, 15+ minutes.)
# - the range factors are shrunk towards none by PRIOR_PAIRS pairs' worth of weight too, so a
#   band with a handful of pairs keeps close to the model's figures;
# - recent pairs weigh more (half-life HALF_LIFE_DAYS), so a branch that changes is followed;
# - a correction moves at most MAX_SHIFT_CHANGE minutes (or SHIFT_CHANGE_SHARE of the band's
#   lower edge, if more) and MAX_SCALE_CHANGE per day, so one odd day (a system outage, a holiday
#   rush) cannot swing the next day's figures.
#
# The daily cap needs yesterday's correction: it is recomputed, not stored, by replaying the last
# CAP_DAYS days from no correction (a handful of small numpy fits at each hourly relearn).

WINDOW_DAYS = 14
HALF_LIFE_DAYS = 3.0
PRIOR_PAIRS = 10.0
SHIFT_STANDARD_ERRORS = 2.0
SHIFT_PRIOR_PAIRS = 10.0
PRIOR_ERROR_SD = 5.0  # minutes: how much errors scatter before a band's pairs say otherwise (with
# PRIOR_PAIRS pairs' weight), so that two pairs that happen to agree prove little
MAX_SHIFT_CHANGE = 2.0  # minutes per day
SHIFT_CHANGE_SHARE = 0.15  # of the band's lower edge, per day, where that is more
MAX_SCALE_CHANGE = 0.3  # per day
CAP_DAYS = 7
MIN_HALF_WIDTH = 0.5  # minutes: a range side narrower than this is scaled as if it were this wide
SCALE_LIMITS = (0.2, 5.0)
TAIL = 0.10  # each side of the 80 % range


@dataclass(frozen=True)
class BandCorrection:
    shift: float = 0.0  # minutes added to the model's mean
    low_scale: float = 1.0  # multiple of the model's (mean - low)
    high_scale: float = 1.0  # multiple of the model's (high - mean)
    weight: float = 0.0  # pairs' worth of (recency-weighted) evidence behind it


IDENTITY = BandCorrection()


@dataclass(frozen=True)
class Calibration:
    bands: tuple[BandCorrection, ...] = tuple(IDENTITY for _ in ESTIMATE_BANDS)
    pairs: int = 0  # pairs in the window (for reports)

    def apply(self, mean: float, low: float, high: float) -> tuple[float, float, float]:
        """The corrected (mean, low, high) of a model estimate, in minutes (not below 0)."""
        band = self.bands[band_of(mean)]
        if band is IDENTITY:
            return mean, low, high
        corrected = max(0.0, mean + band.shift)
        return (corrected,
                max(0.0, corrected - band.low_scale * max(mean - low, MIN_HALF_WIDTH)),
                corrected + band.high_scale * max(high - mean, MIN_HALF_WIDTH))


NO_CORRECTION = Calibration()


@dataclass
class Pairs:
    """(model estimate at issue, wait that followed) of called walk-ins, as arrays."""

    issued: np.ndarray  # seconds since the epoch
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    wait: np.ndarray  # minutes from issue to call


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cumulative, q * cumulative[-1]), len(values) - 1)])


def _fit_band(mean, low, high, wait, weight) -> BandCorrection:
    """The band's correction from its pairs, shrunk towards none (see above)."""
    total = float(weight.sum())
    if total <= 0:
        return IDENTITY
    error = wait - mean
    mean_error = float(np.average(error, weights=weight))
    pairs = total * total / float((weight * weight).sum())  # effective number of weighted pairs
    spread = ((pairs * float(np.average((error - mean_error) ** 2, weights=weight)) + PRIOR_PAIRS * PRIOR_ERROR_SD ** 2)
              / (pairs + PRIOR_PAIRS))
    noise = SHIFT_STANDARD_ERRORS * math.sqrt(spread / pairs)
    shrunk = mean_error * pairs / (pairs + SHIFT_PRIOR_PAIRS)
    shift = math.copysign(max(0.0, abs(shrunk) - noise), mean_error)
    corrected = mean + shift
    waited = wait > 0  # the range is judged on those who waited (as the report does)
    low_scale = high_scale = 1.0
    if waited.sum() >= 2:
        w = weight[waited]
        trust_range = float(w.sum()) / (float(w.sum()) + PRIOR_PAIRS)
        above = (wait[waited] - corrected[waited]) / np.maximum(high[waited] - mean[waited], MIN_HALF_WIDTH)
        below = (corrected[waited] - wait[waited]) / np.maximum(mean[waited] - low[waited], MIN_HALF_WIDTH)
        high_raw = float(np.clip(_weighted_quantile(above, w, 1 - TAIL), *SCALE_LIMITS))
        low_raw = float(np.clip(_weighted_quantile(below, w, 1 - TAIL), *SCALE_LIMITS))
        high_scale = 1 + trust_range * (high_raw - 1)
        low_scale = 1 + trust_range * (low_raw - 1)
    return BandCorrection(shift, low_scale, high_scale, total)


def fit(pairs: Pairs, until: float) -> Calibration:
    """The correction the pairs issued in the WINDOW_DAYS before `until` (epoch seconds) call for."""
    inside = (pairs.issued < until) & (pairs.issued >= until - WINDOW_DAYS * DAY_S)
    age_days = (until - pairs.issued[inside]) / DAY_S
    weight = 0.5 ** (age_days / HALF_LIFE_DAYS)
    mean, low, high, wait = (a[inside] for a in (pairs.mean, pairs.low, pairs.high, pairs.wait))
    bands = np.array([band_of(m) for m in mean], dtype=int)
    fitted = []
    for index in range(len(ESTIMATE_BANDS)):
        here = bands == index
        fitted.append(_fit_band(mean[here], low[here], high[here], wait[here], weight[here]) if here.any() else IDENTITY)
    return Calibration(tuple(fitted), int(inside.sum()))


def _capped(previous: BandCorrection, target: BandCorrection, band: int) -> BandCorrection:
    if target is IDENTITY and previous is IDENTITY:
        return IDENTITY
    shift_step = max(MAX_SHIFT_CHANGE, SHIFT_CHANGE_SHARE * ESTIMATE_BANDS[band][1])

    def towards(old: float, new: float, step: float) -> float:
        return old + max(-step, min(step, new - old))

    return BandCorrection(towards(previous.shift, target.shift, shift_step),
                          towards(previous.low_scale, target.low_scale, MAX_SCALE_CHANGE),
                          towards(previous.high_scale, target.high_scale, MAX_SCALE_CHANGE),
                          target.weight)


def calibrate(pairs: Pairs, now: float) -> Calibration:
    """Today's correction: each of the last CAP_DAYS days moves the previous day's at most by the
    daily caps towards what that day's window calls for, starting from no correction."""
    current = NO_CORRECTION
    for days_back in range(CAP_DAYS - 1, -1, -1):
        target = fit(pairs, now - days_back * DAY_S)
        current = Calibration(tuple(_capped(old, new, band) for band, (old, new)
                                    in enumerate(zip(current.bands, target.bands))), target.pairs)
    return current


DAY_S = 86400.0


def recent_pairs(session: Session, branch_id: int, now: datetime) -> Pairs:
    """Called walk-ins of the last WINDOW_DAYS + CAP_DAYS days with the model's figures at issue
    (not remote tickets held back for arriving late: their wait was their own doing)."""
    since = now - timedelta(days=WINDOW_DAYS + CAP_DAYS)
    rows = session.execute(
        select(Ticket.issued_at, Ticket.model_mean, Ticket.model_low, Ticket.model_high, Ticket.called_at)
        .where(Ticket.branch_id == branch_id, Ticket.issued_at >= since, Ticket.called_at.is_not(None),
               Ticket.called_at <= now, Ticket.priority != "appointment", Ticket.model_mean.is_not(None),
               Ticket.held_count == 0)
        .order_by(Ticket.id)  # a fixed order: the fit must not depend on the query plan
    ).all()
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    issued = np.array([(r[0] - epoch).total_seconds() for r in rows], dtype=float)
    called = np.array([(r[4] - epoch).total_seconds() for r in rows], dtype=float)
    return Pairs(issued, np.array([r[1] for r in rows], dtype=float), np.array([r[2] for r in rows], dtype=float),
                 np.array([r[3] for r in rows], dtype=float), np.maximum(called - issued, 0.0) / 60.0)


CALIBRATE = True  # off only to measure the estimator without it (bench/wait_estimates.py)


def learn_calibration(session: Session, branch_id: int, now: datetime) -> Calibration:
    if not CALIBRATE:
        return NO_CORRECTION
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return calibrate(recent_pairs(session, branch_id, now), (now - epoch).total_seconds())
