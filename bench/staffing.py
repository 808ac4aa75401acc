"""Staffing plans checked in the branch simulator.

    python bench/staffing.py [--history-days 15] [--test-days 10] [--only nominal|busy]

For each scenario of ../shared/scenarios/: simulate its history through the real product, then
plan the next days the way the product does (forecast of walk-ins from that history, bookings as
booked, visit lengths and patience learned from it, Erlang A per 30-minute interval for 80 %
called within 10 minutes and at most 5 % giving up) and play those days again in the simulator
with the planned counters (every counter serving every service). Three plans are compared on the
same days and seed:

- offered-load: the product's plan (staffing for visits still in progress from earlier intervals);
- interval-by-interval: the same, staffing each interval for its own arrivals only (the baseline);
- scenario: the scenario's own counters and shifts.

Per plan: the share of hours of the day (averaged over the test days) whose service level is
within 2 points of the target, abandonment, and counter-hours per day. The last line is JSON.
"""
import argparse
import json
import logging
import sys
import tempfile
from datetime import datetime, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

from queue_app.catalogue.operations import get_branch  # noqa: E402
from queue_app.demo.scenarios import CounterSpec, Scenario, load_scenario  # noqa: E402
from queue_app.demo.simulation import BranchSimulation, simulate  # noqa: E402
from queue_app.planning import forecasting  # noqa: E402
from queue_app.planning import plan as planning
from queue_app.tickets import estimate_learning

TARGET, WAIT_MINUTES, INTERVAL = 0.8, 10, 30


def _app(path: Path):
    from queue_app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "QUEUE_APP_RUN_SCHEDULER": False,
                       "SECRET_KEY": "bench", "TESTING": True})


def plans_from_history(scenario: Scenario, history_days: int, test_days: int, seed: int, scratch: Path):
    """(test days, slot minutes of day, {plan name: {day: counters per slot}})."""
    database = scratch / "history.sqlite"
    simulate(scenario, seed, None, days=history_days, database=database)
    open_days = scenario.open_days(history_days + test_days)
    tests = open_days[history_days:]
    app = _app(database)
    from queue_app.core.extensions import db

    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        branch = get_branch(session, "sim")
        rules = planning.PlanningRules(interval_minutes=INTERVAL, target=TARGET, target_wait_minutes=WAIT_MINUTES)
        days, counts, slots, _by_service = planning.walk_in_history(session, branch, tests[0], rules)
        forecasts = forecasting.forecast_days(days, counts, tests)
        first_moment = planning.day_grid(branch, tests[0], INTERVAL)[0]
        learned = estimate_learning.learn(session, branch, first_moment)
        walk_in_total = sum(s.walk_in_share for s in scenario.services)
        booking_total = sum(s.appointment_share for s in scenario.services) or 1
        ids = {s.code: s.id for s in branch.services}
        booked_per_interval = scenario.appointments_per_30_minutes * (1 - scenario.no_show_rate) * INTERVAL / 30
        walk_in_mean = sum(learned.service_means[ids[s.code]] * s.walk_in_share for s in scenario.services) / walk_in_total
        booking_mean = sum(learned.service_means[ids[s.code]] * s.appointment_share for s in scenario.services) / booking_total
        patience = 1 / learned.patience_rate if learned.patience_rate > 0 else None
    engine.dispose()
    minutes = [slot * INTERVAL for slot in slots]
    last_booking = scenario.close.hour * 60 + scenario.close.minute - 30
    plans = {"offered-load": {}, "interval-by-interval": {}}
    for forecast in forecasts:
        bookings = np.array([booked_per_interval if m <= last_booking else 0.0 for m in minutes])
        arrivals = forecast.mean + bookings
        total = arrivals.sum()
        aht = (forecast.mean.sum() * walk_in_mean + bookings.sum() * booking_mean) / total if total else walk_in_mean
        for name, lagged in (("offered-load", True), ("interval-by-interval", False)):
            _load, counters, _slots = planning.plan_day(arrivals, forecast.mean, INTERVAL, aht, patience, rules, lagged)
            plans[name][forecast.day] = counters
    return tests, minutes, plans


def shifts_for(counters: list[int], minutes: list[int], number: int) -> list[tuple[time, time]]:
    """Shifts of counter `number` (1-based): the intervals where the plan has at least that many."""
    shifts, start = [], None
    for index, needed in enumerate(counters + [0]):
        on = needed >= number
        if on and start is None:
            start = minutes[index]
        if not on and start is not None:
            end = minutes[index - 1] + INTERVAL
            shifts.append((time(start // 60, start % 60), time(end // 60 % 24, end % 60)))
            start = None
    return shifts


def play(scenario: Scenario, tests, minutes, plan: dict | None, seed: int, scratch: Path, name: str) -> dict:
    from flask_migrate import upgrade

    from queue_app import MIGRATIONS_DIR
    from queue_app.core.events import QUIET_KEY
    from queue_app.core.extensions import db

    codes = [s.code for s in scenario.services]
    if plan is not None:
        most = max(max(day) for day in plan.values())
        counters = [CounterSpec(str(n), codes, []) for n in range(1, most + 1)]
        scenario = Scenario(**{**scenario.__dict__, "counters": counters})
    scenario = Scenario(**{**scenario.__dict__, "start_date": tests[0], "days": len(tests)})
    rows = []
    app = _app(scratch / f"{name}.sqlite")
    estimate_learning.forget_learned()
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        with Session(db.engine, info={QUIET_KEY: True}) as session:
            sim = BranchSimulation(session, scenario, seed, rows.append)
            for day in tests:
                if plan is not None:
                    for run in sim.counters.values():
                        run.spec = CounterSpec(run.spec.name, codes, shifts_for(plan[day], minutes, int(run.spec.name)))
                sim.run_day(day)
        db.engine.dispose()
    zone = scenario.zone
    walk_ins = [r for r in rows if r["kind"] == "walk_in"]
    by_hour: dict[int, list[tuple[int, int]]] = {}
    per_day_hour: dict[tuple, list[bool]] = {}
    for row in walk_ins:
        local = datetime.fromisoformat(row["issued_at"]).astimezone(zone)
        met = not row["abandoned"] and row["actual_wait_minutes"] is not None and row["actual_wait_minutes"] <= WAIT_MINUTES
        per_day_hour.setdefault((local.date(), local.hour), []).append(met)
    for (day, hour), outcomes in per_day_hour.items():
        by_hour.setdefault(hour, []).append((sum(outcomes), len(outcomes)))
    levels = {hour: sum(m for m, _ in v) / sum(n for _, n in v) for hour, v in sorted(by_hour.items())}
    hours_met = sum(1 for level in levels.values() if level >= TARGET - 0.02) / len(levels)
    abandon = sum(r["abandoned"] for r in walk_ins) / len(walk_ins)
    if plan is not None:
        counter_hours = float(np.mean([sum(day) * INTERVAL / 60 for day in plan.values()]))
    else:
        counter_hours = sum((e.hour * 60 + e.minute - s.hour * 60 - s.minute) / 60
                            for c in scenario.counters for s, e in c.shifts)
    return {"hours_met": round(hours_met, 3), "abandon": round(abandon, 4), "counter_hours_per_day": round(counter_hours, 2),
            "service_level_by_hour": {f"{h:02d}": round(v, 3) for h, v in levels.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=Path, default=ROOT.parent / "shared" / "scenarios")
    parser.add_argument("--history-days", type=int, default=15)
    parser.add_argument("--test-days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    summary = {}
    for path in sorted(args.scenarios.glob("*.json")):
        if args.only and path.stem != args.only:
            continue
        scenario = load_scenario(path)
        with tempfile.TemporaryDirectory(prefix="staffing-bench-") as scratch:
            scratch = Path(scratch)
            tests, minutes, plans = plans_from_history(scenario, args.history_days, args.test_days, args.seed, scratch)
            results = {name: play(scenario, tests, minutes, plan, args.seed + 1, scratch, name)
                       for name, plan in (*plans.items(), ("scenario", None))}
        print(f"\n{scenario.name}: planned {len(tests)} days from {args.history_days} days of history")
        print(f"{'plan':22}{'hours within 2 pts':>20}{'abandon':>9}{'counter-h/day':>15}  service level by hour")
        for name, r in results.items():
            levels = " ".join(f"{h}:{v:.2f}" for h, v in r["service_level_by_hour"].items())
            print(f"{name:22}{r['hours_met']:>20.3f}{r['abandon']:>9.3f}{r['counter_hours_per_day']:>15.1f}  {levels}")
        ours, baseline = results["offered-load"], results["interval-by-interval"]
        summary[scenario.name] = {
            "hours_met": ours["hours_met"], "abandon": ours["abandon"],
            "counter_hours": ours["counter_hours_per_day"],
            "baseline_hours_met": baseline["hours_met"], "baseline_counter_hours": baseline["counter_hours_per_day"],
            "scenario_counter_hours": results["scenario"]["counter_hours_per_day"],
            "scenario_hours_met": results["scenario"]["hours_met"], "scenario_abandon": results["scenario"]["abandon"],
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
