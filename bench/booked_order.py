"""Booked visits served at their time: what it costs walk-ins, and whether bookings are on time.

    python bench/booked_order.py [--days 8] [--seed 5] [--scenarios FILE_OR_DIR ...] (default: ../shared/scenarios and bench/scenarios/booking_heavy.json)
                                 [--only busy] [--order booked|sort_key] [--history 7] [--no-capacity]

Plays each scenario through the branch simulator (the real product on a real SQLite file) and
reports, per scenario: walk-ins who gave up, their mean wait, and for booked visits the share
called within 10 minutes of the later of their start and their check-in (and the mean of that
lateness). `--order sort_key` plays the order before booked visits went first (every ticket by
sort key, a booking's being its start) for a baseline; `booked` is the product's (queue_order.py).
The simulator books through the product's slot capacity (the staffing plan's booking slots, after
the forecast walk-in load and the walk-in reserve), after `--history` unreported days give the
branch a plan; `--no-capacity` puts every wanted booking in as before.
The last line is one JSON object with the figures per scenario.
"""
import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import literal

from queue_app.demo.scenarios import load_scenario
from queue_app.demo.simulation import simulate
from queue_app.tickets import queue_order, queueing

ON_TIME_MINUTES = 10


def sort_key_only(ticket, now):
    """The order before booked visits went first: everyone by sort key (a booking's is its start)."""
    return literal(queue_order.IN_LINE), ticket.sort_key, ticket.id


def sort_key_only_in_python(priority, effective_at, sort_key, ticket_id, now):
    return queue_order.IN_LINE, sort_key, ticket_id


def figures(report: Path) -> dict:
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    walk_ins = [r for r in rows if r["kind"] == "walk_in"]
    booked = [r for r in rows if r["kind"] == "appointment" and r["called_at"]]
    late = []
    for row in booked:
        due = max(datetime.fromisoformat(row["booked_start"]), datetime.fromisoformat(row["issued_at"]))
        late.append(max(0.0, (datetime.fromisoformat(row["called_at"]) - due).total_seconds() / 60))
    waits = [r["actual_wait_minutes"] for r in walk_ins if r["actual_wait_minutes"] is not None]
    return {
        "walk_ins": len(walk_ins),
        "walk_ins_gave_up": sum(r["abandoned"] for r in walk_ins),
        "walk_in_mean_wait": round(sum(waits) / max(1, len(waits)), 2),
        "booked_called": len(booked),
        "booked_on_time_share": round(sum(m <= ON_TIME_MINUTES for m in late) / max(1, len(late)), 3),
        "booked_mean_late": round(sum(late) / max(1, len(late)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The shared scenarios and the booking-heavy family: bench/scenarios/ also holds the estimate
    # families of bench/wait_estimates.py, which say nothing about booked visits.
    parser.add_argument("--scenarios", type=Path, nargs="+", help="scenario files or folders of them",
                        default=[ROOT.parent / "shared" / "scenarios", ROOT / "bench" / "scenarios" / "booking_heavy.json"])
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--only", help="one scenario by file stem, e.g. busy")
    parser.add_argument("--order", choices=("booked", "sort_key"), default="booked")
    parser.add_argument("--history", type=int, default=7, help="unreported open days played first")
    parser.add_argument("--no-capacity", action="store_true", help="bookings as wanted, not through the capacity")
    parser.add_argument("--stay-away", action="store_true",
                        help="a customer who finds no time with room that day does not come (default: walks in)")
    args = parser.parse_args()
    if args.order == "sort_key":
        # call_next (and the people-ahead count) look them up at each call
        queue_order.claim_order, queue_order.key = sort_key_only, sort_key_only_in_python
        # call_next's claiming statement is built once, at import: build it again in this order.
        queueing._CLAIM = queueing.claim_statement(sort_key_only)
    results = {}
    for folder in args.scenarios:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else [folder]:
            if args.only and path.stem != args.only:
                continue
            began = time.perf_counter()
            with tempfile.TemporaryDirectory() as scratch:
                report = Path(scratch) / "report.jsonl"
                simulate(load_scenario(path), args.seed, report, days=args.days, history_days=args.history,
                         within_capacity=not args.no_capacity, unbooked_walk_in=not args.stay_away)
                results[path.stem] = figures(report)
            print(f"{path.stem} ({args.order}, {time.perf_counter() - began:.0f} s): {results[path.stem]}", flush=True)
    print(json.dumps({"order": args.order, "capacity": not args.no_capacity, "stay_away": args.stay_away,
                      "history": args.history,
                      "days": args.days, "seed": args.seed, "scenarios": results}))


if __name__ == "__main__":
    main()
