"""How good are the wait estimates? The product's estimator against the naive rule and an oracle.

    python bench/wait_estimates.py [--days 40] [--seed 1] [--history 7] [--scenarios DIR ...] [--only NAME]
                                   [--no-oracle] [--no-calibration]

Runs each scenario family (by default every file of ../shared/scenarios/ and of bench/scenarios/;
`--scenarios DIR`, repeatable, replaces those) through the branch simulator (the real product on a
real SQLite file, simulated clock), after `--history` unreported open days so the branch has the
history a running branch has (learned visit lengths, and the calibration of its estimates,
estimate_calibration.py; `--history 0` starts from nothing). For every walk-in it records, at
issue time:

- the product's estimate (the one stored on the ticket and shown to the customer);
- the naive rule: (people ahead + 1) x mean service time / open counters serving the service;
- the oracle: the same branch state re-simulated 400 times for the rest of the day with the
  scenario's true parameters (true service-time distributions, patience, no-show rate and
  punctuality) instead of what the product learned from its history.

Scored on walk-ins who were served (their real wait is known): MSE, MAE, bias, the same by real
wait band (0-5, 5-15, 15+ minutes), and how often the 80 % range held the real wait among those
who waited at all. After the tables, one summary line per family; the last line is one JSON
object with the figures per family.

Families with customers joining from home (a scenario's `remote`, e.g. bench/scenarios/remote_join.json)
add a line on them: how many joined, the share who waited under 5 minutes in the lobby (from "I'm
here" to the call; the goal of "Time to set off"), the median and 90th percentile of that lobby
time, how many were held back once for not being there when called, and how many became no-shows;
beside it the share of walk-ins of the same run who waited under 5 minutes (their whole wait is in
the lobby).

The oracle plays the queue forward with the product's own engine (ticket-order dispatch), which is
exact for the shared scenarios' counters (all serve every service) and bookings (with specialised
counters it is the product's engine, not necessarily the truth); it differs from the
product only in knowing the true parameters. Baseline and oracle are measured in the same run.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_app.demo.scenarios import load_scenario  # noqa: E402
from queue_app.demo.simulation import simulate  # noqa: E402
from queue_app.tickets import estimate_calibration, estimate_learning, estimates  # noqa: E402

BANDS = (("0-5", 0, 5), ("5-15", 5, 15), ("15+", 15, math.inf))
ORACLE_REPLICATIONS = 400


def true_parameters(sim, rng: np.random.Generator) -> estimate_learning.Learned:
    """What an all-knowing estimator would use: large samples from the scenario's distributions."""
    scenario = sim.scenario
    samples = {}
    for spec in scenario.services:
        source = _Random(rng)
        draws = np.array([spec.draw(source) for _ in range(20000)])
        samples[sim.service_ids[spec.code]] = draws
    mean, sd = scenario.arrival_offset
    remote = scenario.remote
    late_mean, late_sd = remote.lateness if remote else estimate_learning.PRIOR_REMOTE_LATENESS
    return estimate_learning.Learned(
        service_samples=samples, service_means={k: float(v.mean()) for k, v in samples.items()},
        service_visits={k: len(v) for k, v in samples.items()}, counter_speed={},
        patience_rate=1 / scenario.patience_mean if scenario.patience_mean else 0.0,
        no_show=scenario.no_show_rate, arrival_offsets=rng.normal(mean, sd, 20000) if sd else np.full(20000, mean),
        learned_at=None,
        remote_lateness=rng.normal(late_mean, late_sd, 20000) if late_sd else np.full(20000, late_mean),
        remote_no_come=remote.no_come_rate if remote else estimate_learning.REMOTE_NO_COME_PRIOR,
    )


class _Random:
    """random.Random-like view of a numpy generator for ServiceSpec.draw."""

    def __init__(self, rng):
        self.rng = rng

    def expovariate(self, rate):
        return self.rng.exponential(1 / rate)

    def lognormvariate(self, mu, sigma):
        return self.rng.lognormal(mu, sigma)

    def random(self):  # the long-visit mixture's coin
        return self.rng.random()


def run(scenario_path: Path, days: int | None, seed: int, with_oracle: bool = True, history: int = 7,
        dump: Path | None = None) -> dict:
    scenario = load_scenario(scenario_path)
    naive_mean = scenario.mean_service_minutes()
    rng = np.random.default_rng(seed)
    truth = {}
    records = []
    remote_rows = []  # joined from home: filled in by the simulation as the day goes on

    def observe(sim, now, ticket, row):
        if row["kind"] == "remote":
            remote_rows.append(row)
        if row["kind"] != "walk_in":
            return
        # The estimator's own figures before the branch's calibration (for --dump).
        row["model"] = [ticket.model_mean, ticket.model_low, ticket.model_high]
        if not with_oracle:
            records.append((row, 0.0))
            return
        if "learned" not in truth:
            truth["learned"] = true_parameters(sim, rng)
        oracle = estimates.estimate_branch(sim.session, sim.branch, now, replications=ORACLE_REPLICATIONS,
                                           learned=truth["learned"], per_service=False, seed=len(records))
        found = oracle.tickets.get(ticket.id)
        records.append((row, found.mean if found and found.mean is not None else None))

    started = time.time()

    def progress(index, total, day):
        print(f"  {scenario.name}: day {index}/{total} {day.day} tickets {day.tickets} "
              f"({time.time() - started:.0f} s)", file=sys.stderr, flush=True)

    database = None
    if dump:  # the branch's whole database too (history days included), for offline study
        dump.mkdir(parents=True, exist_ok=True)
        database = dump / f"{scenario_path.stem}.sqlite"
        database.unlink(missing_ok=True)
    simulate(scenario, seed, None, days=days, progress=progress, observer=observe, history_days=history,
             database=database)
    if dump:
        with open(dump / f"{scenario_path.stem}.jsonl", "w", encoding="utf-8") as out:
            for row, oracle in records:
                out.write(json.dumps(dict(row, oracle=oracle, naive_mean=naive_mean)) + "\n")
    served = [(row, oracle) for row, oracle in records
              if not row["abandoned"] and row["actual_wait_minutes"] is not None
              and row["estimate_minutes"] is not None and oracle is not None]
    actual = np.array([row["actual_wait_minutes"] for row, _ in served])
    product = np.array([row["estimate_minutes"] for row, _ in served], dtype=float)
    naive = np.array([(row["n_ahead"] + 1) * naive_mean / max(1, row["open_counters"]) for row, _ in served])
    oracle = np.array([o for _, o in served])
    low = np.array([row["low_minutes"] for row, _ in served], dtype=float)
    high = np.array([row["high_minutes"] for row, _ in served], dtype=float)

    def scores(estimate, mask):
        error = estimate[mask] - actual[mask]
        return {"mse": float(np.mean(error ** 2)), "mae": float(np.mean(np.abs(error))),
                "bias": float(np.mean(error))} if mask.any() else None

    everyone = np.ones(len(actual), dtype=bool)
    print(f"\n{scenario.name}: {len(records)} walk-ins, {len(served)} served, {time.time() - started:.0f} s")
    print(f"{'':10}{'band':>6}{'n':>6}{'MSE':>9}{'RMSE':>8}{'MAE':>8}{'bias':>8}")
    shown = (("product", product), ("naive", naive), ("oracle", oracle))
    for name, estimate in shown if with_oracle else shown[:2]:
        for band, lo, hi in (("all", 0, math.inf), *BANDS):
            mask = everyone if band == "all" else (actual >= lo) & (actual < hi)
            s = scores(estimate, mask)
            if s:
                print(f"{name:10}{band:>6}{int(mask.sum()):>6}{s['mse']:>9.2f}{math.sqrt(s['mse']):>8.2f}"
                      f"{s['mae']:>8.2f}{s['bias']:>8.2f}")
    waited = actual > 0
    coverage = float(np.mean((low[waited] <= actual[waited]) & (actual[waited] <= high[waited])))
    print(f"80 % range coverage among the {int(waited.sum())} who waited: {coverage:.3f}")
    big = actual >= 15
    remote = remote_figures(remote_rows, actual) if remote_rows else None
    if remote:
        print(f"joined from home: {remote['joined']}, lobby under 5 min {remote['lobby_under_5']:.3f} of the "
              f"{remote['served']} served (median {remote['lobby_median']:.1f} min, p90 {remote['lobby_p90']:.1f}), "
              f"held {remote['held']}, no-shows {remote['no_shows']}; walk-ins waiting under 5 min "
              f"{remote['walk_ins_under_5']:.3f}")
    return {
        "walk_ins_served": len(served),
        "mse_vs_naive": round(scores(product, everyone)["mse"] / scores(naive, everyone)["mse"], 3),
        "mse_vs_oracle": round(scores(product, everyone)["mse"] / scores(oracle, everyone)["mse"], 3)
        if with_oracle else None,
        "mse_vs_naive_15plus": round(scores(product, big)["mse"] / scores(naive, big)["mse"], 3) if big.any() else None,
        "bias_minutes": round(scores(product, everyone)["bias"], 3),
        "coverage80": round(coverage, 3),
        "remote": remote,
    }


def remote_figures(rows: list[dict], walk_in_waits: np.ndarray) -> dict:
    lobby = np.array([r["lobby_minutes"] for r in rows if r["lobby_minutes"] is not None], dtype=float)
    return {
        "joined": len(rows), "served": len(lobby),
        "lobby_under_5": round(float(np.mean(lobby < 5)), 3) if len(lobby) else None,
        "lobby_median": round(float(np.median(lobby)), 2) if len(lobby) else None,
        "lobby_p90": round(float(np.percentile(lobby, 90)), 2) if len(lobby) else None,
        "held": sum(1 for r in rows if r["held"]), "no_shows": sum(1 for r in rows if r["no_show"]),
        "walk_ins_under_5": round(float(np.mean(walk_in_waits < 5)), 3) if len(walk_in_waits) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=Path, action="append",
                        help="a folder of scenario files; repeatable (default: ../shared/scenarios and bench/scenarios)")
    parser.add_argument("--days", type=int, default=None, help="open days per scenario (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="run one scenario by file stem, e.g. nominal")
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle (faster; its ratio is then null)")
    parser.add_argument("--history", type=int, default=7, help="unreported open days played first (default 7)")
    parser.add_argument("--dump", type=Path, help="write every scored walk-in (with the model's own figures) to "
                        "DIR/NAME.jsonl and keep the simulated database as DIR/NAME.sqlite")
    parser.add_argument("--no-calibration", action="store_true",
                        help="the estimator's own figures, without the branch's calibration (for comparison)")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    folders = args.scenarios or [ROOT.parent / "shared" / "scenarios", ROOT / "bench" / "scenarios"]
    paths = [p for folder in folders for p in sorted(folder.glob("*.json")) if not args.only or p.stem == args.only]
    if not paths:
        sys.exit(f"no scenario files{' named ' + args.only if args.only else ''} in {', '.join(map(str, folders))}")
    stems = [p.stem for p in paths]
    if len(set(stems)) < len(stems):  # the JSON line is keyed by family name
        sys.exit(f"two scenario files share a name: {sorted({s for s in stems if stems.count(s) > 1})}")
    if args.no_calibration:
        estimate_calibration.CALIBRATE = False
    results = {path.stem: run(path, args.days, args.seed, not args.no_oracle, args.history, args.dump) for path in paths}
    print()
    for name, figures in results.items():
        print(f"{name:24} MSE vs naive {figures['mse_vs_naive']}, 15+ {figures['mse_vs_naive_15plus']}, "
              f"bias {figures['bias_minutes']:+.2f} min, coverage {figures['coverage80']}, "
              f"vs oracle {figures['mse_vs_oracle']}, n {figures['walk_ins_served']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
