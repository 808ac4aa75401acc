"""Scenario families for the wait-estimate bench: the `long_visits` mixture field, and that the
shared scenarios draw exactly as before it."""
import math
import random
from pathlib import Path

import pytest
from helpers import SCENARIOS, lines, short_scenario

from queue_app.demo.scenarios import ScenarioError, load_scenario, parse_scenario
from queue_app.demo.simulation import simulate

BENCH_SCENARIOS = Path(__file__).resolve().parents[2] / "bench" / "scenarios"
LONG = {"share": 0.3, "mean_minutes": 45, "cv": 0.3}  # often enough to happen in a short run


def with_long_visits(long_visits, code="B", **changes) -> dict:
    data = short_scenario(**changes)
    for service in data["services"]:
        if service["code"] == code:
            service["long_visits"] = long_visits
    return data


def draw_before_long_visits(spec, rng: random.Random) -> float:
    """The simulator's draw as it was before `long_visits` existed."""
    if spec.distribution == "exponential":
        return rng.expovariate(1 / spec.mean_minutes)
    sigma = math.sqrt(math.log(1 + spec.cv ** 2))
    return rng.lognormvariate(math.log(spec.mean_minutes) - sigma ** 2 / 2, sigma)


def test_long_visits_parse_and_draw_a_mixture():
    scenario = parse_scenario(with_long_visits({"share": 0.05, "mean_minutes": 120, "cv": 0.2}))
    spec = next(s for s in scenario.services if s.code == "B")
    assert spec.long_visits == (0.05, 120.0, 0.2)
    assert spec.overall_mean_minutes == pytest.approx(0.95 * spec.mean_minutes + 0.05 * 120)
    assert all(s.long_visits is None for s in scenario.services if s.code != "B")
    rng = random.Random(5)
    draws = [spec.draw(rng) for _ in range(20000)]
    # Ordinary visits (mean 12, cv 0.7) almost never pass an hour; long ones (2 h, cv 0.2) almost always do.
    long_share = sum(d > 60 for d in draws) / len(draws)
    assert 0.04 < long_share < 0.065
    plain = parse_scenario(short_scenario())
    assert scenario.mean_service_minutes() > plain.mean_service_minutes()


def test_a_run_with_long_visits_is_deterministic(tmp_path):
    scenario = parse_scenario(with_long_visits(LONG, days=1))
    simulate(scenario, 4, tmp_path / "one.jsonl")
    simulate(scenario, 4, tmp_path / "two.jsonl")
    one = lines(tmp_path / "one.jsonl")
    assert one == lines(tmp_path / "two.jsonl") and len(one) > 30


@pytest.mark.parametrize(("long_visits", "message"), [
    (0.05, "long_visits: expected an object"),
    ({"mean_minutes": 60}, "long_visits.share: missing"),
    ({"share": 0, "mean_minutes": 60}, "long_visits.share: must be between 0 and 1"),
    ({"share": 1.5, "mean_minutes": 60}, "long_visits.share: must be between 0 and 1"),
    ({"share": 0.05, "mean_minutes": -10}, "long_visits.mean_minutes: must be positive"),
    ({"share": 0.05, "mean_minutes": "long"}, "long_visits.mean_minutes: expected float"),
    ({"share": 0.05, "mean_minutes": 60, "cv": 0}, "long_visits.cv: must be positive"),
])
def test_bad_long_visits_get_a_clear_error(long_visits, message):
    with pytest.raises(ScenarioError, match=r"services\[\d\]\." + message):
        parse_scenario(with_long_visits(long_visits))


@pytest.mark.parametrize("name", ["nominal", "busy"])
def test_the_shared_scenarios_draw_exactly_as_before(name):
    scenario = load_scenario(SCENARIOS / f"{name}.json")
    assert all(s.long_visits is None for s in scenario.services)
    assert scenario.mean_service_minutes() == pytest.approx(
        sum(s.mean_minutes * s.walk_in_share for s in scenario.services)
        / sum(s.walk_in_share for s in scenario.services))
    for spec in scenario.services:
        now, before = random.Random(scenario.seed), random.Random(scenario.seed)
        assert [spec.draw(now) for _ in range(500)] == [draw_before_long_visits(spec, before) for _ in range(500)]
        assert now.random() == before.random()  # and the generator is left in the same state


def test_the_bench_families_load():
    paths = sorted(BENCH_SCENARIOS.glob("*.json"))
    assert len(paths) >= 7
    for path in paths:
        scenario = load_scenario(path)
        assert 1 <= scenario.days and scenario.counters


def test_configured_minutes_and_handover_play_a_branch_whose_model_is_wrong(tmp_path):
    """`configured_minutes`: what the product is told (its prior); `handover_minutes`: paperwork
    after each visit before the next call, which the product's visit lengths do not show."""
    data = short_scenario(days=1, handover_minutes=3)
    for service in data["services"]:
        service["configured_minutes"] = service["mean_minutes"] / 2
    scenario = parse_scenario(data)
    assert scenario.handover_minutes == 3.0
    assert [s.configured_minutes for s in scenario.services] == [s.mean_minutes / 2 for s in scenario.services]
    simulate(scenario, 4, tmp_path / "wrong.jsonl")
    wrong = lines(tmp_path / "wrong.jsonl")
    simulate(parse_scenario(short_scenario(days=1)), 4, tmp_path / "right.jsonl")
    right = lines(tmp_path / "right.jsonl")

    def mean_wait(rows):
        waits = [r["actual_wait_minutes"] for r in rows if r["actual_wait_minutes"] is not None]
        return sum(waits) / len(waits)

    # Three idle minutes after every visit: the same customers wait longer.
    assert mean_wait(wrong) > mean_wait(right) + 2


@pytest.mark.parametrize(("change", "message"), [
    ({"handover_minutes": -1}, r"^handover_minutes: must be at least 0"),
    ({"handover_minutes": "soon"}, r"^handover_minutes: expected float"),
])
def test_a_bad_handover_gets_a_clear_error(change, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(short_scenario(**change))


@pytest.mark.parametrize(("minutes", "message"), [(0, "must be positive"), ("half", "expected float")])
def test_bad_configured_minutes_get_a_clear_error(minutes, message):
    data = short_scenario()
    data["services"][0]["configured_minutes"] = minutes
    with pytest.raises(ScenarioError, match=r"services\[0\]\.configured_minutes: " + message):
        parse_scenario(data)
