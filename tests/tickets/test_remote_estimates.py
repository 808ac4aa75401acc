"""The estimator and the simulator know remote tickets (issue 20): a holder not here yet arrives
after "Time to set off", the trip and a learned lateness; called before arriving, the ticket is
held back and the counter takes the next one; the branch simulator plays customers who join from
home and reports their time in the lobby."""
import math
from datetime import timedelta

import numpy as np
import pytest
from helpers import lines, short_scenario, utc

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.demo.scenarios import ScenarioError, parse_scenario
from queue_app.demo.simulation import simulate
from queue_app.tickets import estimate_learning, estimate_state, estimates, queueing, remote
from queue_app.tickets.models import Ticket

NOW = utc(2026, 3, 2, 2, 0)  # a Monday, 10:00 in Taipei: the demo branch is open
SECRET = "test-secret-key"


def _learned(visit_minutes: float = 10.0, lateness: float = 2.0) -> estimate_learning.Learned:
    return estimate_learning.Learned({1: np.full(200, visit_minutes)}, {1: visit_minutes}, {1: 200}, {}, 0.0, 0.1,
                                     np.zeros(20), NOW, remote_lateness=np.full(50, lateness), remote_no_come=0.0)


def _calls(waiting, counters: int = 1, learned=None, held_places: int = 3) -> np.ndarray:
    state = estimate_state.BranchNow(
        NOW, [estimate_state.CounterNow(i, frozenset({1}), 1.0, [(0.0, math.inf)]) for i in range(counters)],
        waiting, [], held_places=held_places, set_off_margin=5.0)
    return estimates._Queue(state, learned or _learned(), 2000, salt=3).run().call


def _walk_in(number: int) -> estimate_state.WaitingNow:
    return estimate_state.WaitingNow(number, 1, NOW + timedelta(seconds=number))


def _away(number: int, travel: float, set_off: float | None = None, held: bool = False) -> estimate_state.WaitingNow:
    ticket = _walk_in(number)
    ticket.away, ticket.travel, ticket.set_off, ticket.held = True, travel, set_off, held
    return ticket


def test_a_remote_holder_who_cannot_be_here_in_time_lets_the_next_walk_in_go_first():
    present = _calls([_walk_in(1), _walk_in(2)])
    away = _calls([_away(1, travel=30), _walk_in(2)])
    # Present, the first visit (10 min) comes before the walk-in; 30 minutes away, the counter
    # takes the walk-in at once and the remote ticket comes back after its held places.
    assert present[:, 1].mean() == pytest.approx(10.0)
    assert away[:, 1].mean() == pytest.approx(0.0)
    # Its own figures stay its turn if its holder is there: what it needs to set off.
    assert away[:, 0].mean() == pytest.approx(0.0)


def test_a_held_ticket_comes_back_after_its_places_if_its_holder_has_arrived():
    # One counter, 10 min visits, 3 places: held at 0, back at 30; the holder (told 20 min ago,
    # a 25 min trip, 2 min late) is here at 7 and is served at 30, before the walk-in behind the
    # first three that joined after it.
    line = [_away(1, travel=25, set_off=-20.0), _walk_in(2), _walk_in(3), _walk_in(4), _walk_in(5)]
    calls = _calls(line)
    assert [round(float(calls[:, i].mean())) for i in range(1, 5)] == [0, 10, 20, 40]
    # Held already, the next call is its last: not here then, a no-show, nobody waits for it.
    line[0].held = True
    calls = _calls(line)
    assert [round(float(calls[:, i].mean())) for i in range(1, 5)] == [0, 10, 20, 30]


def test_a_holder_told_in_time_is_here_at_the_turn_and_served_as_a_walk_in():
    # Told now with a 5 min trip, the ticket's turn at 10 (a visit in progress): here by 7.
    learned = _learned()
    state = estimate_state.BranchNow(
        NOW, [estimate_state.CounterNow(0, frozenset({1}), 1.0, [(0.0, math.inf)], busy_service=1, busy_minutes=0.0,
                                        busy_ticket=99)],
        [_away(1, travel=5, set_off=0.0), _walk_in(2)], [], held_places=3, set_off_margin=5.0)
    calls = estimates._Queue(state, learned, 2000, salt=3).run().call
    assert np.isfinite(calls).all()
    assert (calls[:, 1] > calls[:, 0]).all()  # the walk-in stays behind it


def test_lateness_and_never_coming_are_learned_from_finished_remote_tickets(session):
    catalogue.update_branch(session, "demo", allow_remote_tickets=True)
    branch = catalogue.get_branch(session, "demo")
    counter = branch.counters[0]
    catalogue.update_counter(session, counter.id, state="open")
    for number in range(6):
        start = NOW + timedelta(minutes=30 * number)
        joined = remote.issue_remote(session, "demo", "A", 10, phone=f"+88691200{number:04d}", secret=SECRET,
                                     now=start)
        assert remote.send_set_off(session, now=start) == 1  # an empty line: time to set off at once
        if number == 5:
            continue  # told, never came
        remote.arrived(session, joined.ticket.id, now=start + timedelta(minutes=10 + number))
        assert queueing.call_next(session, counter.id, now=start + timedelta(minutes=12 + number)).id == joined.ticket.id
        queueing.finish(session, joined.ticket.id, now=start + timedelta(minutes=15 + number))
    last = session.scalar(Ticket.__table__.select().where(Ticket.phone == "+886912000005").with_only_columns(Ticket.id))
    queueing.leave(session, last, now=NOW + timedelta(hours=3))
    learned = estimate_learning.learn(session, session.get(Branch, branch.id), NOW + timedelta(hours=4))
    # Arrival - message - trip of the five who came; the prior fills in while data is thin.
    prior = estimate_learning._normal_quantiles(*estimate_learning.PRIOR_REMOTE_LATENESS,
                                                estimate_learning.PRIOR_OBSERVATIONS - 5)
    assert sorted(learned.remote_lateness) == pytest.approx(sorted([0.0, 1.0, 2.0, 3.0, 4.0, *prior]))
    # 1 of 6 told never came, shrunk towards the prior by 10 tickets.
    assert learned.remote_no_come == pytest.approx((1 + 0.05 * 10) / (6 + 10))


REMOTE = {"share": 0.5, "travel_minutes": [5, 15], "lateness_minutes": {"mean": 1, "sd": 2}, "no_come_rate": 0.1}


def test_the_simulator_plays_customers_who_join_from_home(tmp_path):
    # A busy two-hour day: waits long enough for a trip from home.
    data = short_scenario(days=1, remote=REMOTE, walk_in_rate_per_hour=[["11:00", 60.0], ["12:00", 60.0]])
    scenario = parse_scenario(data)
    assert scenario.remote.share == 0.5 and scenario.remote.travel_minutes == (5, 15)
    simulate(scenario, 4, tmp_path / "remote.jsonl")
    rows = lines(tmp_path / "remote.jsonl")
    remote_rows = [r for r in rows if r["kind"] == "remote"]
    assert len(remote_rows) >= 10
    for row in remote_rows:
        assert 5 <= row["travel_minutes"] <= 15
        if row["arrived_at"] is not None:
            assert row["set_off_at"] is not None and row["arrived_at"] >= row["set_off_at"]
        if row["lobby_minutes"] is not None:  # called after arriving: the time spent in the lobby
            assert 0 <= row["lobby_minutes"] <= row["actual_wait_minutes"]
        if row["no_show"]:
            assert row["held"] and row["called_at"] is None
    assert any(r["lobby_minutes"] is not None for r in remote_rows)


@pytest.mark.parametrize(("remote_spec", "message"), [
    ({"share": 0, "travel_minutes": [5, 10]}, "remote.share: must be above 0"),
    ({"share": 0.3, "travel_minutes": [30, 10]}, "remote.travel_minutes"),
    ({"share": 0.3, "travel_minutes": [5, 200]}, "remote.travel_minutes"),
    ({"share": 0.3, "travel_minutes": [5, 10], "no_come_rate": 1}, "remote.no_come_rate: must be below 1"),
    ({"share": 0.3, "travel_minutes": [5, 10], "lateness_minutes": {"sd": -1}}, "remote.lateness_minutes.sd"),
    ({"share": 0.3, "travel_minutes": [5, 10], "set_off_margin_minutes": 90}, "remote.set_off_margin_minutes"),
    ("often", "remote: expected an object"),
])
def test_a_bad_remote_spec_gets_a_clear_error(remote_spec, message):
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        parse_scenario(short_scenario(remote=remote_spec))
