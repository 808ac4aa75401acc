"""What the wait estimator learns from a branch's own history: visit lengths per service, counter
speed factors, no-shows, how early booked customers arrive and how late remote customers (joined
from home) arrive after being told to set off; with priors while data is thin."""
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist

import numpy as np
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.tickets import numbering
from queue_app.tickets.estimate_calibration import NO_CORRECTION, Calibration, learn_calibration
from queue_app.tickets.models import Ticket, TicketEvent

LEARNING_DAYS = 28


RELEARN_AFTER = timedelta(minutes=60)


PRIOR_OBSERVATIONS = 20  # while a service has fewer visits, the configured minutes fill in


PRIOR_CV = 0.6


WINSOR_IQRS = 3.0  # the fence on log minutes above which visits are capped (winsorise)


# How much counters' speeds truly differ (sd of the factor) before a counter's visits say otherwise:
# with visits of CV 0.6, 50 visits weigh as much as this prior.
COUNTER_SPREAD = 0.085


MIN_COUNTER_VISITS = 30


NO_SHOW_PRIOR = 0.1


PRIOR_ARRIVAL_OFFSET = (-8.0, 10.0)  # appointment arrival minus booked start (mean, sd), minutes


MINUTE = 60.0


GAP_LIMIT = 10.0  # minutes: a longer stop between visits is a break, not the counter's pace


GAP_PRIOR = 20  # visits' worth of weight pulling a counter's gap towards none


# Remote customers: arrival minus (set-off message + their own trip time), minutes (mean, sd).
# Late by two minutes on average with a wide spread: a trip estimate is a guess.
PRIOR_REMOTE_LATENESS = (2.0, 5.0)


REMOTE_NO_COME_PRIOR = 0.05  # told to set off and never came


def _normal_quantiles(mean: float, sd: float, count: int) -> np.ndarray:
    """`count` evenly spaced quantiles of a normal (pseudo-observations for a prior)."""
    if count <= 0:
        return np.empty(0)
    return np.array([NormalDist(mean, sd).inv_cdf((i + 0.5) / count) for i in range(count)])


@dataclass
class Learned:
    service_samples: dict[int, np.ndarray]  # minutes per visit, winsorised, prior-filled
    service_means: dict[int, float]
    service_visits: dict[int, int]  # real observations behind each sample
    counter_speed: dict[int, float]
    patience_rate: float  # walk-ins giving up while waiting, per minute waited
    no_show: float  # share of bookings never checked in
    arrival_offsets: np.ndarray  # check-in minus booked start, minutes
    learned_at: datetime
    # The branch's correction of the estimator's figures, from its recent estimates and waits.
    calibration: Calibration = NO_CORRECTION
    # Per counter: minutes between a finish and the next call when the next customer was waiting.
    counter_gap: dict[int, float] = field(default_factory=dict)
    # Remote tickets: arrival minus (set-off message + trip), minutes; and the share never arriving.
    remote_lateness: np.ndarray = field(default_factory=lambda: _normal_quantiles(*PRIOR_REMOTE_LATENESS,
                                                                                    PRIOR_OBSERVATIONS))
    remote_no_come: float = REMOTE_NO_COME_PRIOR


def prior_sample(mean: float, count: int, cv: float = PRIOR_CV) -> np.ndarray:
    """`count` evenly spaced quantiles of a lognormal with the given mean (pseudo-observations)."""
    sigma = math.sqrt(math.log(1 + cv * cv))
    mu = math.log(max(mean, 0.1)) - sigma * sigma / 2
    probabilities = (np.arange(count) + 0.5) / count
    z = np.array([NormalDist().inv_cdf(p) for p in probabilities])
    return np.exp(mu + sigma * z)


def winsorise(minutes: np.ndarray) -> np.ndarray:
    """Cap values above a fence on the log scale (Q3 + 3 IQR of log minutes): a visit left open
    for hours counts as long, not as hours (at CV 0.6 the cap is about 13 times the median visit).

    On the log scale because visit lengths are skewed: a fence on minutes (Q3 + 3 IQR) cut 4 % of
    the visits of a lognormal branch with CV 1.5 and made its estimates too short. A fence of 1.5
    IQR on logs cut only 0.35 % of that branch's visits, but they carry 5 % of its mean, and it cut
    the rare very long visits of a mixture branch, which are real: the estimates of the longest
    waits ran short (bench/wait_estimates.py over three seeds: waits of 15+ minutes at 1.09 and
    1.19 times the naive rule's error on the mixture). At 3 IQR it cuts no lognormal visit up to
    CV 1.5 and no exponential one."""
    if len(minutes) < 8:
        return minutes
    logs = np.log(np.maximum(minutes, 1 / 60))
    q1, q3 = np.percentile(logs, [25, 75])
    return np.minimum(minutes, math.exp(q3 + WINSOR_IQRS * (q3 - q1)))


def service_time_sample(observed: np.ndarray, configured_minutes: float) -> np.ndarray:
    observed = winsorise(np.asarray(observed, dtype=float))
    missing = PRIOR_OBSERVATIONS - len(observed)
    if missing > 0:
        observed = np.concatenate([observed, prior_sample(configured_minutes, missing)])
    return observed


def learn(session: Session, branch: Branch, now: datetime, days: int = LEARNING_DAYS) -> Learned:
    """Fit the estimator's parameters from the branch's last `days` of tickets and bookings."""
    since = now - timedelta(days=days)
    services = session.scalars(select(Service).where(Service.branch_id == branch.id)).all()
    visits = session.execute(
        select(Ticket.service_id, Ticket.counter_id, Ticket.called_at, Ticket.finished_at, Ticket.issued_at)
        .where(Ticket.branch_id == branch.id, Ticket.issued_at >= since, Ticket.issued_at < now,
               Ticket.status.in_(("done", "no_show")), Ticket.called_at.is_not(None),
               Ticket.finished_at.is_not(None), Ticket.finished_at <= now)
        .order_by(Ticket.id)  # a fixed order: the fit must not depend on the query plan (sums, samples)
    ).all()
    by_service: dict[int, list[float]] = {}
    for service_id, _, called, finished, _ in visits:
        by_service.setdefault(service_id, []).append((finished - called).total_seconds() / MINUTE)
    samples, means, counts = {}, {}, {}
    for service in services:
        observed = np.array(by_service.get(service.id, []), dtype=float)
        counts[service.id] = len(observed)
        samples[service.id] = service_time_sample(observed, service.expected_minutes)
        means[service.id] = float(samples[service.id].mean())

    # Counter speed: the counter's total winsorised time over what the service means predict,
    # shrunk towards 1 by how noisy that ratio is (empirical Bayes). A fixed weight of 50 visits
    # gave counters of a heavy-tailed branch (CV 1.5) speeds 5-8 % apart by chance, and its
    # longest waits were estimated worse for it (bench/wait_estimates.py: waits of 15+ minutes
    # at 0.83 and 0.82 of the naive rule's error on two seeds; 0.79 and 0.78 without speeds).
    per_counter: dict[int, list[tuple[float, float]]] = {}
    caps = {sid: float(sample.max()) for sid, sample in samples.items()}
    for service_id, counter_id, called, finished, _ in visits:
        if counter_id is None or service_id not in means:
            continue
        minutes = min((finished - called).total_seconds() / MINUTE, caps[service_id])
        per_counter.setdefault(counter_id, []).append((minutes, means[service_id]))
    speed = {}
    for counter_id, pairs in per_counter.items():
        if len(pairs) < MIN_COUNTER_VISITS:
            continue
        expected = sum(e for _, e in pairs)
        ratio = sum(m for m, _ in pairs) / expected
        noise = sum((m - ratio * e) ** 2 for m, e in pairs) / expected ** 2  # the ratio's variance
        speed[counter_id] = 1 + (ratio - 1) * COUNTER_SPREAD ** 2 / (COUNTER_SPREAD ** 2 + noise)

    gaps = counter_gaps(session, branch, visits)

    # Patience: walk-ins who left while waiting, per minute all walk-ins spent waiting.
    left = exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.type == "left")
    waits = session.execute(
        select(Ticket.issued_at, Ticket.called_at, Ticket.finished_at, left)
        .where(Ticket.branch_id == branch.id, Ticket.issued_at >= since, Ticket.issued_at < now,
               Ticket.priority != "appointment",
               (Ticket.called_at.is_not(None)) | (and_(Ticket.status == "cancelled", left)))
        .order_by(Ticket.id)
    ).all()
    exposure = sum(((called or finished) - issued).total_seconds() / MINUTE
                   for issued, called, finished, _ in waits)
    gave_up = sum(1 for *_, was_left in waits if was_left)
    patience_rate = gave_up / exposure if exposure > 0 and gave_up else 0.0

    # Bookings: who shows up, and when relative to the booked start.
    booked = session.execute(
        select(Appointment.status, Appointment.start_at, Ticket.issued_at)
        .outerjoin(Ticket, Ticket.id == Appointment.ticket_id)
        .where(Appointment.branch_id == branch.id, Appointment.start_at >= since,
               Appointment.start_at < now - timedelta(hours=1),
               Appointment.status.in_(("checked_in", "no_show")))
        .order_by(Appointment.id)
    ).all()
    offsets = np.array([(issued - start).total_seconds() / MINUTE
                        for status, start, issued in booked if status == "checked_in" and issued], dtype=float)
    no_shows = sum(1 for status, *_ in booked if status == "no_show")
    prior_weight = 10
    no_show = (no_shows + NO_SHOW_PRIOR * prior_weight) / (len(booked) + prior_weight)
    if len(offsets) < PRIOR_OBSERVATIONS:
        offsets = np.concatenate([offsets, _normal_quantiles(*PRIOR_ARRIVAL_OFFSET,
                                                             PRIOR_OBSERVATIONS - len(offsets))])
    lateness, no_come = remote_arrivals(session, branch, since, now)
    return Learned(samples, means, counts, speed, patience_rate, no_show, offsets, now,
                   learn_calibration(session, branch.id, now), gaps, lateness, no_come)


def remote_arrivals(session: Session, branch: Branch, since: datetime, now: datetime) -> tuple[np.ndarray, float]:
    """How late remote customers arrive after "Time to set off" (arrival minus message minus
    their own trip time, minutes; priors fill in while there are few), and the share of those
    told who never came (shrunk towards REMOTE_NO_COME_PRIOR by 10 tickets). Only finished
    tickets count: one still on its way has not shown how late it will be."""
    told = session.execute(
        select(Ticket.set_off_sent_at, Ticket.arrived_at, Ticket.travel_minutes)
        .where(Ticket.branch_id == branch.id, Ticket.remote.is_(True), Ticket.issued_at >= since,
               Ticket.issued_at < now, Ticket.set_off_sent_at.is_not(None),
               Ticket.status.in_(("done", "no_show", "cancelled")))
        .order_by(Ticket.id)
    ).all()
    lateness = np.array([(arrived - sent).total_seconds() / MINUTE - (travel or 0)
                         for sent, arrived, travel in told if arrived is not None and arrived >= sent], dtype=float)
    never = sum(1 for _, arrived, _ in told if arrived is None)
    no_come = (never + REMOTE_NO_COME_PRIOR * 10) / (len(told) + 10)
    if len(lateness) < PRIOR_OBSERVATIONS:
        lateness = np.concatenate([lateness, _normal_quantiles(*PRIOR_REMOTE_LATENESS,
                                                               PRIOR_OBSERVATIONS - len(lateness))])
    return lateness, no_come


def counter_gaps(session: Session, branch: Branch, visits) -> dict[int, float]:
    """Each counter's pause between visits, learned from the ticket log: after a finish, how long
    until the counter called its next ticket, counted only when that ticket was already waiting
    (so the counter was not idle for want of customers), the call was inside the same shift (a
    break or the end of a shift is not the counter's pace) and within GAP_LIMIT minutes. The mean,
    shrunk towards none by GAP_PRIOR visits; a counter that calls at once gets 0."""
    shifts = {c.id: c.shifts or branch.opening_hours for c in
              session.scalars(select(Counter).where(Counter.branch_id == branch.id)).unique()}
    windows: dict[tuple[int, object], list] = {}

    def same_shift(counter_id: int, finished: datetime, called: datetime) -> bool:
        day = numbering.local_day(finished, branch.zone)
        if (counter_id, day) not in windows:
            windows[counter_id, day] = hours.day_intervals(shifts.get(counter_id, branch.opening_hours), day, branch.zone)
        return any(start <= finished and called < end for start, end in windows[counter_id, day])

    by_counter: dict[int, list] = {}
    for _, counter_id, called, finished, issued in visits:
        if counter_id is not None:
            by_counter.setdefault(counter_id, []).append((called, finished, issued))
    gaps = {}
    for counter_id, rows in by_counter.items():
        rows.sort()
        seen = []
        for (_, finished, _), (called, _, issued) in zip(rows, rows[1:]):
            gap = (called - finished).total_seconds() / MINUTE
            if issued < finished and 0 <= gap <= GAP_LIMIT and same_shift(counter_id, finished, called):
                seen.append(gap)
        if seen:
            gaps[counter_id] = sum(seen) / (len(seen) + GAP_PRIOR)
    return gaps


_learned: dict[tuple[str, int], Learned] = {}


_learned_lock = threading.Lock()


def learned_for(session: Session, branch: Branch, now: datetime) -> Learned:
    """The branch's parameters, re-learned at most hourly (per database and branch)."""
    key = (str(session.get_bind().url), branch.id)
    with _learned_lock:
        cached = _learned.get(key)
    if cached is None or not (cached.learned_at <= now < cached.learned_at + RELEARN_AFTER):
        cached = learn(session, branch, now)
        with _learned_lock:
            _learned[key] = cached
    return cached


def forget_learned() -> None:
    with _learned_lock:
        _learned.clear()
