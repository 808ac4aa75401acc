"""Staffing (Erlang C / A), the arrival forecaster, the branch plan and what it does to bookings."""
import csv
import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MONDAY, _walk_in_history
from sqlalchemy import select

from queue_app.booking import operations as booking
from queue_app.catalogue.models import Counter
from queue_app.catalogue.operations import get_branch
from queue_app.cli import forecast_command, staffing_command
from queue_app.planning import forecasting
from queue_app.planning import plan as planning
from queue_app.planning.models import StaffingPlan
from queue_app.planning.staffing import erlang_a, erlang_b, erlang_c_service_level, staff_for


@pytest.mark.parametrize(("rate", "minutes", "seconds", "counters", "level"), [
    (200, 3, 20, 14, 0.8884), (360, 4, 20, 29, 0.8403), (12, 8, 600, 3, 0.9524),
    (30, 6, 300, 5, 0.9554), (120, 12, 900, 26, 0.9510),
])
def test_erlang_c_fewest_counters_meeting_the_target(rate, minutes, seconds, counters, level):
    plan = staff_for(rate, minutes, 0.8, seconds)
    assert (plan.counters, round(plan.service_level, 4)) == (counters, level)
    assert erlang_c_service_level(counters - 1, rate, minutes, seconds) < 0.8


def test_erlang_a_tends_to_erlang_c_and_to_erlang_b():
    level_c = erlang_c_service_level(14, 200, 3, 20)
    level_a, abandon = erlang_a(14, 200, 3, 20, patience_minutes=1e6)
    assert level_a == pytest.approx(level_c, abs=1e-4) and abandon < 1e-5
    # Impatient customers: nobody waits, those who find every counter busy are lost, as in Erlang B.
    _level, abandon = erlang_a(5, 30, 6, 300, patience_minutes=1e-4)
    assert abandon == pytest.approx(erlang_b(5, 3.0), rel=1e-3)
    # Patience helps the service level of those who stay and costs some who leave.
    patient = staff_for(200, 3, 0.8, 20, patience_minutes=2, max_abandon=0.05)
    assert patient.counters <= 14 and patient.abandon <= 0.05


def test_staffing_command_prints_json():
    result = CliRunner().invoke(staffing_command, ["--rate", "200", "--aht-minutes", "3", "--target", "0.8",
                                                   "--within-seconds", "20"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"counters": 14, "service_level": 0.8884, "abandon": 0.0}
    with_patience = CliRunner().invoke(staffing_command, ["--rate", "12", "--aht-minutes", "8", "--within-seconds",
                                                          "600", "--patience-minutes", "30", "--max-abandon", "0.05"])
    assert set(json.loads(with_patience.output)) == {"counters", "service_level", "abandon"}
    bad = CliRunner().invoke(staffing_command, ["--rate", "-1", "--aht-minutes", "3", "--within-seconds", "20"])
    assert bad.exit_code != 0 and "rate" in bad.output.lower()


# --- forecaster -------------------------------------------------------------------------------------------

WEEKLY = {0: [4, 8, 12, 6], 1: [3, 6, 9, 5], 2: [3, 6, 9, 5], 3: [3, 6, 9, 5], 4: [6, 10, 14, 9]}


def _history(weeks: int, rng, dispersion: float = 0.0):
    days, rows = [], []
    day = date(2026, 1, 5)  # a Monday
    while len(days) < weeks * 5:
        if day.weekday() < 5:
            means = np.array(WEEKLY[day.weekday()], dtype=float)
            if dispersion:
                means = rng.gamma(1 / dispersion, means * dispersion)
            days.append(day)
            rows.append(rng.poisson(means))
        day += timedelta(days=1)
    return days, np.array(rows, dtype=float)


def test_forecast_recovers_a_known_weekly_profile():
    rng = np.random.default_rng(3)
    days, counts = _history(16, rng)
    targets = forecasting.next_open_days(days, 5)
    for forecast in forecasting.forecast_days(days, counts, targets):
        truth = np.array(WEEKLY[forecast.day.weekday()], dtype=float)
        assert np.abs(forecast.mean - truth).max() < 0.2 * truth.max()
        assert (forecast.p10 <= forecast.mean).all() and (forecast.mean <= forecast.p90).all()


def test_quantiles_widen_with_over_dispersion():
    calm = forecasting.forecast_days(*_history(16, np.random.default_rng(4)), [date(2026, 4, 27)])[0]
    wild = forecasting.forecast_days(*_history(16, np.random.default_rng(4), dispersion=0.3), [date(2026, 4, 27)])[0]
    assert ((wild.p90 - wild.p10) / np.maximum(wild.mean, 1)).mean() > 1.2 * ((calm.p90 - calm.p10) / np.maximum(calm.mean, 1)).mean()
    assert forecasting.nb_quantile(10, 0.5, 0.9) > forecasting.nb_quantile(10, 0.0, 0.9)


def test_forecast_command_reads_and_writes_csv(tmp_path):
    days, counts = _history(6, np.random.default_rng(5))
    history = tmp_path / "history.csv"
    with history.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "count"])
        for day, row in zip(days, counts):
            for slot, count in enumerate(row):
                writer.writerow([datetime(day.year, day.month, day.day, 9, 0) + timedelta(minutes=15 * slot), int(count)])
    out = tmp_path / "forecast.csv"
    result = CliRunner().invoke(forecast_command, ["--history", str(history), "--interval", "15", "--horizon-days", "1",
                                                   "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["start"] for r in rows] == ["2026-02-16T09:00", "2026-02-16T09:15", "2026-02-16T09:30", "2026-02-16T09:45"]
    assert all(float(r["p10"]) <= float(r["mean"]) <= float(r["p90"]) for r in rows)
    broken = tmp_path / "broken.csv"
    broken.write_text("when,how_many\n2026-01-01T09:00,3\n")
    bad = CliRunner().invoke(forecast_command, ["--history", str(broken), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "start,count" in bad.output


# --- the branch plan ---------------------------------------------------------------------------------------


def test_plan_follows_the_forecast_keeps_overrides_and_is_idempotent(session):
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, date(2026, 3, 2))
    assert planning.plan_branch(session, branch, MONDAY) > 0
    day = planning.plan_of_day(session, branch, date(2026, 3, 2))
    by_hour = {p.starts_at.astimezone(branch.zone).strftime("%H:%M"): p for p in day}
    assert by_hour["10:30"].forecast_arrivals > 1.5 * by_hour["15:00"].forecast_arrivals
    assert by_hour["10:30"].counters_planned >= by_hour["15:00"].counters_planned >= 1
    first = [(p.starts_at, p.counters_planned, p.booking_slots, round(p.forecast_arrivals, 6)) for p in day]

    planning.set_override(session, branch, by_hour["15:00"].starts_at, counters=4, booking_slots=0)
    planning.plan_branch(session, branch, MONDAY)  # the nightly job, again
    again = planning.plan_of_day(session, branch, date(2026, 3, 2))
    assert [(p.starts_at, p.counters_planned, p.booking_slots, round(p.forecast_arrivals, 6)) for p in again] == first
    kept = next(p for p in again if p.starts_at == by_hour["15:00"].starts_at)
    assert (kept.counters, kept.slots) == (4, 0)
    with pytest.raises(Exception, match="0 to 500"):
        planning.set_override(session, branch, kept.starts_at, counters=-1)


def test_bookings_offered_follow_the_plan(session):
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, date(2026, 3, 2))
    planning.plan_branch(session, branch, MONDAY)
    plans = {p.starts_at: p for p in planning.plan_of_day(session, branch, date(2026, 3, 2))}
    closed = next(at for at, p in plans.items() if p.starts_at.astimezone(branch.zone).hour == 15)
    planning.set_override(session, branch, closed, booking_slots=0)
    open_ = closed + timedelta(minutes=30)
    planning.set_override(session, branch, open_, booking_slots=2)
    offered = booking.availability(session, "demo", "A", from_day=date(2026, 3, 2), days=1, now=MONDAY)
    remaining = {slot.start: slot.remaining for slot in offered["days"][0]["slots"]}
    assert remaining[closed] == 0 and remaining[open_] == 2
    # Two bookings fill the interval; a third is refused.
    for n in range(2):
        booking.book(session, "demo", "A", open_, name=f"P{n}", phone=f"+88691200000{n}", now=MONDAY)
    with pytest.raises(Exception, match="just taken"):
        booking.book(session, "demo", "A", open_, name="P3", phone="+886912000009", now=MONDAY)
    assert session.scalar(select(StaffingPlan.booking_slots_override).where(StaffingPlan.starts_at == open_)) == 2


def test_the_planning_job_twice_gives_the_same_plan(app, session):
    from queue_app.jobs import scheduler as jobs

    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, date(2026, 3, 2))
    jobs.plan_branches(app, now=MONDAY)
    first = [(p.starts_at, p.counters_planned, p.booking_slots) for p in planning.plan_of_day(session, branch, date(2026, 3, 2))]
    session.expire_all()
    jobs.plan_branches(app, now=MONDAY)
    again = [(p.starts_at, p.counters_planned, p.booking_slots) for p in planning.plan_of_day(session, branch, date(2026, 3, 2))]
    assert first == again and len(first) == 14  # 09:00-12:30 and 13:30-17:00 in half hours


def test_forecast_and_staffing_through_the_api(app, api, session):
    manager = "manager@demo.test"
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, date(2026, 3, 2))
    planning.plan_branch(session, branch, MONDAY)
    forecast = api.call("GET", "/branches/demo/forecast?date=2026-03-02", manager)
    assert forecast.status_code == 200, forecast.json
    first = forecast.json["intervals"][0]
    assert first["start"] == "2026-03-02T09:00:00+08:00" and {s["service"] for s in first["services"]} == {"A", "B", "C"}
    assert all(s["walk_in_p10"] <= s["walk_in_mean"] <= s["walk_in_p90"] for s in first["services"])
    plan = api.call("GET", "/branches/demo/staffing?date=2026-03-02", manager).json["intervals"]
    assert len(plan) == 14 and all(p["counters"] == p["counters_planned"] for p in plan)
    changed = api.call("PUT", "/branches/demo/staffing", manager,
                       json={"start": "2026-03-02T15:00:00+08:00", "counters": 5, "booking_slots": 1})
    assert changed.status_code == 200, changed.json
    row = next(p for p in changed.json["intervals"] if p["start"] == "2026-03-02T15:00:00+08:00")
    assert (row["counters"], row["counters_override"], row["slots"]) == (5, 5, 1)
    # Bad requests are refused with a reason, never a 500.
    missing = api.call("PUT", "/branches/demo/staffing", manager, json={"start": "2026-03-02T15:00:00+08:00"})
    assert missing.status_code == 422 and missing.json["error"]["code"] == "invalid_field"
    nowhere = api.call("PUT", "/branches/demo/staffing", manager, json={"start": "2031-01-01T03:00:00+08:00", "counters": 1})
    assert nowhere.status_code == 404 and nowhere.json["error"]["code"] == "plan_not_found"
    too_many = api.call("PUT", "/branches/demo/staffing", manager, json={"start": "2026-03-02T15:00:00+08:00", "counters": 9999})
    assert too_many.status_code == 422
    assert api.call("GET", "/branches/demo/staffing?date=someday", manager).status_code == 422
    staff = api.call("GET", "/branches/demo/staffing", "staff1@demo.test")
    assert staff.status_code == 403


def test_without_history_there_is_no_plan_and_bookings_follow_the_open_counters(session):
    branch = get_branch(session, "demo")
    assert planning.plan_branch(session, branch, MONDAY) == 0
    assert planning.plan_of_day(session, branch, date(2026, 3, 2)) == []
    offered = booking.availability(session, "demo", "B", from_day=date(2026, 3, 2), days=1, now=MONDAY)
    assert offered["days"][0]["slots"] and all(s.remaining == 2 for s in offered["days"][0]["slots"])  # Counters 2, 3


def test_a_quiet_interval_still_has_a_counter_and_a_booking_slot():
    rules = planning.PlanningRules()
    _load, counters, slots = planning.plan_day(np.array([0.0, 12.0]), np.array([0.0, 12.0]), 30, 10.0, None, rules)
    assert counters[0] == 1 and slots[0] == 1
    assert counters[1] > counters[0] and slots[1] <= counters[1]


def test_booking_slots_count_no_more_counters_than_are_on_shift():
    rules = planning.PlanningRules()
    busy, walk_ins = np.array([60.0, 60.0]), np.array([3.0, 3.0])  # 30-min intervals, 10-min visits
    _load, counters, free = planning.plan_day(busy, walk_ins, 30, 10.0, None, rules)
    assert min(counters) >= 5 and min(free) >= 3
    _load, same, short = planning.plan_day(busy, walk_ins, 30, 10.0, None, rules, on_shift=np.array([4.0, 0.5]))
    assert same == counters  # the recommendation is what the forecast needs, whoever is on shift
    walk_in_load = 3.0 / 30 * 10.0
    assert short == [round(4 * (1 - rules.walk_in_reserve) - walk_in_load), 0] == [2, 0]
    # Enough counters on shift: the plan's own number, as before.
    assert planning.plan_day(busy, walk_ins, 30, 10.0, None, rules, on_shift=np.array([50.0, 50.0]))[2] == free


def test_counters_on_shift_count_each_counters_hours_and_part_of_an_interval(session):
    branch = get_branch(session, "demo")  # Asia/Taipei
    day = date(2026, 3, 2)
    grid = planning.day_grid(branch, day, 30)
    at = {start.astimezone(branch.zone).strftime("%H:%M"): start for start in grid}
    starts = [at["09:00"], at["11:30"], at["12:00"], at["15:00"]]
    morning = {"mon": [["09:00", "11:45"]]}
    on_shift = planning.counters_on_shift([morning, branch.opening_hours, {}], day, branch.zone, starts, 30)
    # The morning counter, the one on the branch's hours; the counter with no hours that Monday none.
    assert on_shift.tolist() == [2.0, 1.5, 1.0, 1.0]


def test_a_branch_short_of_counters_offers_no_more_bookings_than_its_shifts_serve(session):
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, date(2026, 3, 2))
    planning.plan_branch(session, branch, MONDAY)
    before = {p.starts_at: p.booking_slots for p in planning.plan_of_day(session, branch, date(2026, 3, 2))}
    # Counters 2 and 3 work mornings only; Counter 1 keeps the branch's hours.
    for counter in session.scalars(select(Counter).where(Counter.branch_id == branch.id, Counter.name != "Counter 1")):
        counter.shifts = {day: [["09:00", "12:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    session.commit()
    planning.plan_branch(session, branch, MONDAY)
    after = {p.starts_at: p for p in planning.plan_of_day(session, branch, date(2026, 3, 2))}
    afternoon = [p for at, p in after.items() if p.starts_at.astimezone(branch.zone).hour >= 13]
    assert afternoon and all(p.booking_slots <= 1 for p in afternoon)  # one counter, less its walk-ins
    assert sum(p.booking_slots for p in afternoon) < sum(before[p.starts_at] for p in afternoon)
    assert all(after[at].booking_slots <= slots for at, slots in before.items())
    offered = booking.availability(session, "demo", "A", from_day=date(2026, 3, 2), days=1, now=MONDAY)
    assert all(slot.remaining <= 1 for slot in offered["days"][0]["slots"]
               if slot.start.astimezone(branch.zone).hour >= 13)
