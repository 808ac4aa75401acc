"""Self-correcting wait estimates (estimate_calibration.py): the branch's own pairs of (estimate at
issue, wait that followed) correct the bias and the 80 % range, by band; and a branch that starts
with a wrong model converges within a week in the simulator."""
import json
from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import pytest
from helpers import utc
from sqlalchemy.orm import Session

from queue_app.catalogue.operations import get_branch
from queue_app.core.extensions import db

from queue_app.demo.scenarios import parse_scenario
from queue_app.demo.simulation import simulate
from queue_app.tickets import estimate_calibration as calibration
from queue_app.tickets import estimate_learning, queueing
from queue_app.tickets.estimate_calibration import (
    CAP_DAYS,
    DAY_S,
    ESTIMATE_BANDS,
    MAX_SHIFT_CHANGE,
    NO_CORRECTION,
    Pairs,
    band_of,
)
from queue_app.tickets.models import Ticket

NOW = 400 * DAY_S
MONDAY_1000_TAIPEI = utc(2026, 3, 2, 2, 0)  # the demo branch is open, with counters


def pairs_of(rng, count, *, days=7.0, truth=lambda m: 1.5 * m, spread=0.35) -> Pairs:
    """Model estimates over the last `days` whose real waits are `truth(m)` with lognormal noise,
    while the model claims a range of m x (0.6, 1.45)."""
    mean = rng.uniform(0.5, 50, count)
    wait = truth(mean) * rng.lognormal(-spread * spread / 2, spread, count)
    return Pairs(NOW - rng.uniform(0, days * DAY_S, count), mean, 0.6 * mean, 1.45 * mean, wait)


def judged(corrections, pairs: Pairs) -> tuple[float, float]:
    """(bias in minutes, 80 % range coverage among those who waited) of corrected estimates."""
    fixed = np.array([corrections.apply(m, lo, hi) for m, lo, hi in zip(pairs.mean, pairs.low, pairs.high)])
    waited = pairs.wait > 0
    inside = (fixed[waited, 1] <= pairs.wait[waited]) & (pairs.wait[waited] <= fixed[waited, 2])
    return float(np.mean(fixed[:, 0] - pairs.wait)), float(np.mean(inside))


def test_bands_cover_every_estimate():
    assert [band_of(m) for m in (0, 4.99, 5, 14.9, 15, 29, 30, 59.9, 60, 500)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert band_of(-1) == 0 and len(ESTIMATE_BANDS) == 5


def test_no_pairs_no_correction():
    empty = Pairs(*(np.zeros(0) for _ in range(5)))
    assert calibration.calibrate(empty, NOW) == NO_CORRECTION
    assert NO_CORRECTION.apply(7.5, 3.0, 12.0) == (7.5, 3.0, 12.0)


def test_a_biased_model_is_corrected_on_new_pairs():
    """Waits 1.5x the model's estimates, with wider spread than it claims: after a week of pairs,
    fresh pairs from the same branch get estimates with nearly all the bias gone (what is left is
    within two standard errors of the scattered bands) and ranges holding about 80 %."""
    rng = np.random.default_rng(3)
    history, fresh = pairs_of(rng, 3000, days=12), pairs_of(rng, 3000, days=0.5)
    raw_bias, raw_coverage = judged(NO_CORRECTION, fresh)
    assert raw_bias < -5 and raw_coverage < 0.6  # the model really is wrong
    bias, coverage = judged(calibration.calibrate(history, NOW), fresh)
    assert abs(bias) < 0.15 * abs(raw_bias) and 0.75 <= coverage <= 0.86


def test_a_right_model_is_left_alone():
    rng = np.random.default_rng(4)
    # Waits exactly as the model says (its range is the 10th-90th percentile of the truth).
    mean = rng.uniform(1, 50, 4000)
    wait = mean * rng.lognormal(-0.045, 0.3, 4000)
    low, high = mean * np.exp(-0.045 - 1.2816 * 0.3), mean * np.exp(-0.045 + 1.2816 * 0.3)
    found = calibration.calibrate(Pairs(NOW - rng.uniform(0, 7 * DAY_S, 4000), mean, low, high, wait), NOW)
    for band in found.bands:
        assert abs(band.low_scale - 1) < 0.15 and abs(band.high_scale - 1) < 0.15
    assert abs(found.bands[1].shift) < 0.5


def test_little_evidence_moves_little():
    rng = np.random.default_rng(5)
    few = pairs_of(rng, 6, truth=lambda m: 3 * m)
    many = pairs_of(rng, 3000, truth=lambda m: 3 * m)
    for band_few, band_many in zip(calibration.calibrate(few, NOW).bands, calibration.calibrate(many, NOW).bands):
        assert abs(band_few.shift) <= abs(band_many.shift) / 2 + 1e-9


def test_the_correction_moves_at_most_the_daily_cap():
    """Pairs of one day only (yesterday), calling for a shift of ten minutes: today's correction
    has moved one day's cap, not ten minutes; a week of such days moves up to a cap a day."""
    rng = np.random.default_rng(6)
    mean = rng.uniform(5.5, 14, 2000)  # all in the 5-15 band
    one_day = Pairs(NOW - rng.uniform(0, DAY_S * 0.9, 2000), mean, mean - 2, mean + 2, mean + 10)
    assert calibration.calibrate(one_day, NOW).bands[1].shift == pytest.approx(MAX_SHIFT_CHANGE)
    week = Pairs(NOW - rng.uniform(0, 7 * DAY_S, 2000), mean, mean - 2, mean + 2, mean + 10)
    shift = calibration.calibrate(week, NOW).bands[1].shift
    assert MAX_SHIFT_CHANGE < shift <= CAP_DAYS * MAX_SHIFT_CHANGE + 1e-9


# --- the whole product: the simulator plays a branch whose model starts wrong ----------------------

WRONG_MODEL = {
    "name": "wrong_model",
    "description": "The branch configured every service at half its real minutes and has no history; "
                   "counters spend two minutes on paperwork after each visit, which no visit length shows.",
    "timezone": "Europe/Berlin", "start_date": "2026-06-08", "days": 7, "weekdays_only": True,
    "open": "09:00", "close": "17:00", "walk_in_cutoff_minutes": 30,
    "handover_minutes": 2.0,
    "services": [
        {"code": "A", "name": "Quick", "mean_minutes": 5, "configured_minutes": 2.5, "cv": 0.6,
         "distribution": "lognormal", "walk_in_share": 0.6, "appointment_share": 0.0},
        {"code": "B", "name": "Standard", "mean_minutes": 12, "configured_minutes": 6, "cv": 0.7,
         "distribution": "lognormal", "walk_in_share": 0.3, "appointment_share": 0.6},
        {"code": "C", "name": "Complex", "mean_minutes": 24, "configured_minutes": 12, "cv": 0.5,
         "distribution": "lognormal", "walk_in_share": 0.1, "appointment_share": 0.4},
    ],
    "walk_in_rate_per_hour": [["09:00", 26.0], ["11:00", 36.0], ["14:00", 28.0], ["15:30", 32.0]],
    "appointments": {"per_30_minutes": 1, "no_show_rate": 0.1,
                     "arrival_offset_minutes": {"distribution": "normal", "mean": -6, "sd": 8}},
    "counters": [
        {"name": "1", "services": ["A", "B", "C"], "shifts": [["09:00", "17:00"]]},
        {"name": "2", "services": ["A", "B", "C"], "shifts": [["09:00", "17:00"]]},
        {"name": "3", "services": ["A", "B"], "shifts": [["09:00", "17:00"]]},
        {"name": "4", "services": ["A", "B", "C"], "shifts": [["09:00", "17:00"]]},
        {"name": "5", "services": ["A", "B"], "shifts": [["09:00", "17:00"]]},
        {"name": "6", "services": ["A", "B", "C"], "shifts": [["11:00", "15:00"]]},
    ],
    "patience_minutes": {"distribution": "exponential", "mean": 40},
    "seed": 19,
}


def judged_days(rows: list[dict]) -> dict[date, tuple[float, float, int]]:
    """Per day: (bias, 80 % coverage among those who waited, served walk-ins) of the shown estimates."""
    by_day = defaultdict(list)
    for row in rows:
        if row["kind"] == "walk_in" and row["actual_wait_minutes"] is not None and row["estimate_minutes"] is not None:
            by_day[date.fromisoformat(row["issued_at"][:10])].append(row)
    figures = {}
    for day, served in sorted(by_day.items()):
        actual = np.array([r["actual_wait_minutes"] for r in served])
        shown = np.array([r["estimate_minutes"] for r in served], dtype=float)
        low = np.array([r["low_minutes"] for r in served], dtype=float)
        high = np.array([r["high_minutes"] for r in served], dtype=float)
        waited = actual > 0
        figures[day] = (float(np.mean(shown - actual)),
                        float(np.mean((low[waited] <= actual[waited]) & (actual[waited] <= high[waited]))), len(served))
    return figures


@pytest.mark.slow
def test_a_branch_with_a_wrong_model_is_calibrated_within_a_week(tmp_path):
    simulate(parse_scenario(WRONG_MODEL), 19, tmp_path / "week.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "week.jsonl").read_text().splitlines()]
    days = judged_days(rows)
    assert len(days) == 7
    first = days[min(days)]
    assert first[0] < -1.0  # the first day's estimates are clearly too short: the model is wrong
    # The last three days of the week together: unbiased and calibrated.
    last = [row for row in rows if date.fromisoformat(row["issued_at"][:10]) >= sorted(days)[-3]]
    bias, coverage, served = judged_days([dict(r, issued_at="2000-01-01") for r in last])[date(2000, 1, 1)]
    assert served > 500
    assert abs(bias) < 0.5, (bias, days)
    assert 0.77 <= coverage <= 0.85, (coverage, days)


# --- in the product: the model's figures are kept at issue, and the correction is applied ----------

def _pairs_in_table(session, branch, now, count=600):
    """Walk-ins of the last week whose real waits were twice the model's figures, and booked
    visits (which must not count) whose waits were ten times them."""
    service = next(s for s in branch.services if s.code == "A")
    rng = np.random.default_rng(8)
    for number in range(1, count + 1):
        issued = now - timedelta(minutes=float(rng.uniform(60, 7 * 24 * 60)))
        model = float(rng.uniform(2, 40))
        booked = number % 5 == 0
        wait = model * (10 if booked else 2)
        session.add(Ticket(
            branch_id=branch.id, service_id=service.id, local_date=issued.date(), prefix="A", number=number,
            label=f"A{number:03d}", status="done", priority="appointment" if booked else "normal",
            effective_at=issued, sort_key=issued, issued_at=issued, called_at=issued + timedelta(minutes=wait),
            finished_at=issued + timedelta(minutes=wait + float(rng.uniform(2, 8))), token_hash=f"pair-{number}",
            model_mean=model, model_low=model * 0.6, model_high=model * 1.5,
        ))
    session.commit()


def test_an_issued_walk_in_keeps_the_model_figures_and_shows_them_corrected(session):
    branch = get_branch(session, "demo")
    now = MONDAY_1000_TAIPEI
    _pairs_in_table(session, branch, now)
    learned = estimate_learning.learn(session, branch, now)
    # Waits twice the model's: about ten minutes more in the 5-15 band (the walk-ins only: the
    # booked visits' tenfold waits would have made it far more).
    assert 8.0 < learned.calibration.bands[band_of(10.0)].shift < 11.0
    for number in range(12):  # enough people ahead for an estimate in the 5-15 band
        queueing.issue_ticket(session, "demo", "A", now=now + timedelta(seconds=number))
    ticket = session.get(Ticket, queueing.issue_ticket(session, "demo", "A", now=now + timedelta(minutes=1)).ticket.id)
    assert ticket.model_mean is not None and ticket.model_low <= ticket.model_mean + 1e-9 <= ticket.model_high + 2e-9
    corrected = estimate_learning.learned_for(session, branch, now).calibration.apply(
        ticket.model_mean, ticket.model_low, ticket.model_high)
    assert (ticket.estimate_minutes, ticket.estimate_low, ticket.estimate_high) == tuple(
        max(0, round(v)) for v in corrected)
    assert ticket.estimate_minutes > round(ticket.model_mean)


def test_the_issued_ticket_carries_the_figures_kept_in_its_row(app, seeded):
    """On the full-run path (an explicit clock), the ticket handed back holds the estimate and the
    model's figures as stored, in a session that keeps loaded rows across commits, as the app's
    request sessions and the simulator's do (the simulator's report reads them from it)."""
    with app.app_context():
        engine = db.engine
    with Session(engine, expire_on_commit=False) as session:
        for number in range(6):
            issued = queueing.issue_ticket(session, "demo", "A", now=MONDAY_1000_TAIPEI + timedelta(seconds=number))
        ticket = issued.ticket
        held = (ticket.estimate_minutes, ticket.estimate_low, ticket.estimate_high,
                ticket.model_mean, ticket.model_low, ticket.model_high)
    with Session(engine) as fresh:
        row = fresh.get(Ticket, ticket.id)
        stored = (row.estimate_minutes, row.estimate_low, row.estimate_high, row.model_mean, row.model_low,
                  row.model_high)
    assert stored[0] is not None and stored[3] is not None
    assert held == stored


def test_a_branch_without_pairs_shows_the_model_figures(session):
    branch = get_branch(session, "demo")
    assert estimate_learning.learn(session, branch, MONDAY_1000_TAIPEI).calibration == NO_CORRECTION
    ticket = session.get(Ticket, queueing.issue_ticket(session, "demo", "A", now=MONDAY_1000_TAIPEI).ticket.id)
    assert (ticket.estimate_minutes, ticket.estimate_low, ticket.estimate_high) == tuple(
        max(0, round(v)) for v in (ticket.model_mean, ticket.model_low, ticket.model_high))
