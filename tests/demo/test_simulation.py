"""The branch simulator: real domain functions, a simulated clock, a report line per ticket."""
import json

import pytest
from helpers import SCENARIOS, lines, short_scenario

from queue_app.cli import simulate_command
from queue_app.demo.scenarios import ScenarioError, load_scenario, parse_scenario
from queue_app.demo.simulation import simulate

FIELDS = {"label", "service", "kind", "issued_at", "n_ahead", "open_counters", "estimate_minutes", "low_minutes",
          "high_minutes", "actual_wait_minutes", "abandoned",
          # The rule changed (issue 16): booked visits are served at their time; the report shows it.
          "booked_start", "called_at"}


def test_same_seed_same_report_and_every_field_on_every_ticket(tmp_path):
    scenario = parse_scenario(short_scenario())
    days = simulate(scenario, 7, tmp_path / "one.jsonl")
    simulate(scenario, 7, tmp_path / "two.jsonl")
    simulate(scenario, 8, tmp_path / "other.jsonl")
    one = lines(tmp_path / "one.jsonl")
    assert one == lines(tmp_path / "two.jsonl")
    assert one != lines(tmp_path / "other.jsonl")
    assert len(one) == sum(day.tickets for day in days) > 100
    for row in one:
        assert set(row) == FIELDS
        assert row["kind"] in ("walk_in", "appointment")
        assert row["abandoned"] == (row["actual_wait_minutes"] is None)
        if row["estimate_minutes"] is not None:
            assert row["low_minutes"] <= row["estimate_minutes"] <= row["high_minutes"]
    assert {row["kind"] for row in one} == {"walk_in", "appointment"}
    assert any(row["abandoned"] for row in one) and any(row["actual_wait_minutes"] for row in one)
    # Labels restart each day and never repeat within one.
    by_day = {}
    for row in one:
        by_day.setdefault(row["issued_at"][:10], []).append(row["label"])
    assert all(len(labels) == len(set(labels)) for labels in by_day.values())


def test_simulate_command_writes_the_report_and_shows_progress(tmp_path):
    from click.testing import CliRunner

    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(short_scenario(days=1)))
    result = CliRunner().invoke(simulate_command, ["--scenario", str(path), "--seed", "3",
                                                   "--report", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert "day 1/1" in result.output and "Report written" in result.output
    assert len(lines(tmp_path / "out.jsonl")) > 50


@pytest.mark.parametrize(("change", "message"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"services": []}, "services"),
    ({"days": 0}, "days"),
    ({"open": "nine"}, "open"),
])
def test_a_broken_scenario_gets_a_clear_error(tmp_path, change, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(short_scenario(**change))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(short_scenario(**change)))
    from click.testing import CliRunner

    result = CliRunner().invoke(simulate_command, ["--scenario", str(path), "--report", str(tmp_path / "r.jsonl")])
    assert result.exit_code != 0 and message in result.output


def test_shipped_scenarios_load():
    for path in sorted(SCENARIOS.glob("*.json")):
        assert load_scenario(path).days >= 1
