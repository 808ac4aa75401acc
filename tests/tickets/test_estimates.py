"""Wait estimates: queueing theory checks, learning from history, honest states, almost-your-turn."""
import dataclasses
import math
import random
from datetime import timedelta

import numpy as np
import pytest
from helpers import utc
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter, Service
from queue_app.catalogue.operations import get_branch
from queue_app.notifications import mail, notify
from queue_app.notifications.models import Notification
from queue_app.tickets import estimate_learning, estimate_state, estimates, queueing, turn_alerts, visit_lengths
from queue_app.tickets.models import Ticket, TicketEvent

MONDAY_0800_TAIPEI = utc(2026, 3, 2, 0, 0)  # demo branch opens at 09:00 local (01:00 UTC)


# --- shifts: every counter's window arithmetic in one pass ----------------------------------------

def test_ends_move_into_each_counters_own_shifts_as_one_counter_at_a_time_would():
    """_Queue._into_shifts moves every row's end into its own counter's shifts at once; the rule
    is _into_windows applied counter by counter (the first window ending after the time, from its
    start at the earliest; none left: never). Counters with one shift, a break, three shifts, no
    end and none today, random ends including ones past every window and infinite ones."""
    from queue_app.tickets.estimate_state import BranchNow, CounterNow

    now = MONDAY_0800_TAIPEI
    windows = [[(0.0, 60.0)], [(0.0, 45.0), (75.0, 200.0)], [(10.0, 20.0), (30.0, 40.0), (50.0, 500.0)],
               [(0.0, math.inf)], []]
    counters = [CounterNow(i + 1, frozenset({1}), 1.0, w) for i, w in enumerate(windows)]
    learned = estimate_learning.Learned({1: estimate_learning.prior_sample(6, 40)}, {1: 6.0}, {1: 40}, {}, 0.01,
                                        0.1, estimate_learning.prior_sample(1, 20) - 8, now)
    queue = estimates._Queue(BranchNow(now, counters, [], []), learned, 400)
    rng = np.random.default_rng(7)
    counter = rng.integers(0, len(windows), 400)
    ends = np.where(rng.random(400) < 0.05, math.inf, rng.uniform(0, 700, 400))
    serve = rng.random(400) < 0.8
    expected = ends.copy()
    for index, own in enumerate(windows):
        moved = serve & (counter == index) & (ends >= (own[0][1] if own else math.inf))
        if own and math.isfinite(own[0][1]) and moved.any():
            expected[moved] = estimates._into_windows(ends[moved], own)
    assert np.array_equal(queue._into_shifts(counter, ends.copy(), serve), expected)


# --- M/M/s: the estimator's engine against queueing theory -------------------------------------

def _mms_delays(servers: int, rho: float, customers: int, seed: int) -> list[tuple[int, float]]:
    """(people waiting ahead, wait) of each delayed customer of an M/M/s FCFS queue, mu = 1."""
    rng = random.Random(seed)
    lam = rho * servers
    free_at = [0.0] * servers  # FCFS: each customer takes the earliest free server
    waiting_until: list[float] = []  # call times of customers who are still waiting, in order
    now, delays = 0.0, []
    for _ in range(customers):
        now += rng.expovariate(lam)
        waiting_until = [t for t in waiting_until if t > now]
        earliest = min(range(servers), key=free_at.__getitem__)
        start = max(now, free_at[earliest])
        if start > now:
            delays.append((len(waiting_until), start - now))
            waiting_until.append(start)
        free_at[earliest] = start + rng.expovariate(1.0)
    return delays[len(delays) // 10:]  # skip the warm-up


def _erlang_quantile(k: int, rate: float, q: float) -> float:
    """Quantile of Erlang(k, rate) by bisection on its CDF."""
    def cdf(x):
        term, total = 1.0, 1.0
        for i in range(1, k):
            term *= rate * x / i
            total += term
        return 1 - math.exp(-rate * x) * total
    low, high = 0.0, (k + 10 * math.sqrt(k) + 10) / rate
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return (low + high) / 2


@pytest.mark.parametrize("rho", [0.8, 0.9])
def test_queue_length_estimate_has_the_relative_error_theory_gives(rho):
    servers = 4
    delays = _mms_delays(servers, rho, 400_000, seed=int(rho * 10))
    waits = np.array([w for _, w in delays])
    estimate = np.array([(n + 1) / servers for n, _ in delays])
    relative = np.mean((waits - estimate) ** 2) / np.mean(waits) ** 2
    assert relative == pytest.approx(1 - rho, rel=0.10)
    ranges = {n: (_erlang_quantile(n + 1, servers, 0.1), _erlang_quantile(n + 1, servers, 0.9))
              for n in {n for n, _ in delays}}
    low = np.array([ranges[n][0] for n, _ in delays])
    high = np.array([ranges[n][1] for n, _ in delays])
    coverage = np.mean((low <= waits) & (waits <= high))
    assert abs(coverage - 0.80) <= 0.01


def _all_busy_state(servers: int, waiting: int, now):
    counters = [estimate_state.CounterNow(i, frozenset({1}), 1.0, [(0.0, math.inf)], busy_service=1, busy_minutes=0.0,
                                          busy_ticket=i + 1)
                for i in range(servers)]
    queue = [estimate_state.WaitingNow(100 + i, 1, now + timedelta(seconds=i)) for i in range(waiting)]
    return estimate_state.BranchNow(now, counters, queue, [])


@pytest.mark.parametrize("ahead", [0, 3, 12])
def test_engine_reproduces_the_erlang_answer_for_exponential_service(ahead):
    """With s busy counters and exponential visits the product's engine must give (n+1)/(s mu)
    and the Erlang(n+1, s mu) range."""
    servers, now = 4, MONDAY_0800_TAIPEI
    rng = np.random.default_rng(5)
    learned = estimate_learning.Learned({1: rng.exponential(1.0, 50_000)}, {1: 1.0}, {1: 50_000}, {}, 0.0, 0.1,
                                np.zeros(20), now)
    state = _all_busy_state(servers, ahead + 1, now)
    runs = estimates._Queue(state, learned, 20_000, salt=7).run()
    calls = runs.call[:, ahead]
    assert calls.mean() == pytest.approx((ahead + 1) / servers, rel=0.03)
    assert np.quantile(calls, 0.1) == pytest.approx(_erlang_quantile(ahead + 1, servers, 0.1), rel=0.06, abs=0.01)
    assert np.quantile(calls, 0.9) == pytest.approx(_erlang_quantile(ahead + 1, servers, 0.9), rel=0.04)


def _visits(shape: str, rng: np.random.Generator, count: int) -> np.ndarray:
    """Visit lengths with a mean of 10 minutes: exponential, or lognormal with the given
    coefficient of variation."""
    if shape == "exponential":
        return rng.exponential(10.0, count)
    sigma2 = math.log(1 + float(shape) ** 2)
    return 10.0 * np.exp(rng.normal(-sigma2 / 2, math.sqrt(sigma2), count))


@pytest.mark.parametrize("shape, tolerance", [("0.6", (0.75, 1.35)), ("exponential", (0.75, 1.35)),
                                              ("1.5", (0.5, 1.35))])
def test_a_visit_past_nearly_every_visit_seen_is_played_as_running_on_as_such_visits_do(shape, tolerance):
    """A counter stuck in a visit longer than 99.5 % of visits frees, in the play, about when such
    visits truly end (the old rule said within a quarter of the mean visit: 2.5 minutes here).
    The exponential tail under-plays a heavy lognormal's (CV 1.5) by up to half, by design."""
    rng = np.random.default_rng(11)
    truth = _visits(shape, rng, 2_000_000)
    elapsed = float(np.quantile(truth, 0.995))
    truly_left = float(truth[truth > elapsed].mean()) - elapsed
    seen = _visits(shape, rng, 300)  # the branch's recent visits
    assert (seen > elapsed).sum() < visit_lengths.TAIL  # past nearly every visit seen
    now = MONDAY_0800_TAIPEI
    learned = estimate_learning.Learned({1: seen}, {1: float(seen.mean())}, {1: len(seen)}, {}, 0.0, 0.1,
                                        np.zeros(20), now)
    counter = estimate_state.CounterNow(1, frozenset({1}), 1.0, [(0.0, math.inf)], busy_service=1,
                                        busy_minutes=elapsed, busy_ticket=1)
    state = estimate_state.BranchNow(now, [counter], [estimate_state.WaitingNow(100, 1, now)], [])
    calls = estimates._Queue(state, learned, 20_000, salt=3).run().call[:, 0]
    low, high = tolerance
    assert low * truly_left <= calls.mean() <= high * truly_left


# --- learning from the ticket history ------------------------------------------------------------

def _history(session, branch, minutes_by_code: dict[str, list[float]], start, first_number=0):
    """Finished visits straight into the ticket table (as the event log's tickets would be)."""
    counters = session.scalars(select(Counter).where(Counter.branch_id == branch.id)).unique().all()
    services = {s.code: s for s in session.scalars(select(Service).where(Service.branch_id == branch.id))}
    moment, number = start, first_number
    for code, durations in minutes_by_code.items():
        for minutes in durations:
            number += 1
            moment += timedelta(minutes=1)
            called = moment + timedelta(minutes=2)
            session.add(Ticket(
                branch_id=branch.id, service_id=services[code].id, local_date=moment.date(), prefix=code,
                number=number, label=f"{code}{number:03d}", status="done", priority="normal", effective_at=moment,
                sort_key=moment, issued_at=moment, called_at=called, started_at=called,
                finished_at=called + timedelta(minutes=minutes), counter_id=counters[number % len(counters)].id,
                token_hash=f"history-{code}-{number}",
            ))
    session.commit()


def test_learned_service_times_match_the_truth_and_shrug_off_an_outlier(session):
    branch = get_branch(session, "demo")
    rng = np.random.default_rng(11)
    truth = {"A": 6.0, "B": 20.0}
    sigma = math.sqrt(math.log(1 + 0.7 ** 2))
    history = {code: list(rng.lognormal(math.log(mean) - sigma ** 2 / 2, sigma, 1500)) for code, mean in truth.items()}
    start = utc(2026, 2, 2, 1, 0)
    _history(session, branch, history, start)
    now = utc(2026, 2, 20, 1, 0)
    learned = estimate_learning.learn(session, branch, now)
    services = {s.code: s.id for s in branch.services}
    for code, mean in truth.items():
        assert learned.service_means[services[code]] == pytest.approx(mean, rel=0.05)
    # Somebody forgot to press "finish" for three hours.
    _history(session, branch, {"A": [180.0], "B": [180.0]}, start + timedelta(days=3), first_number=5000)
    again = estimate_learning.learn(session, branch, now)
    for code in truth:
        before, after = learned.service_means[services[code]], again.service_means[services[code]]
        assert abs(after - before) / before < 0.02


def test_rare_very_long_visits_are_learned_as_they_are_not_capped(session):
    """A service whose visits are mostly short but one in twenty takes an hour (a mixture): those
    hours are real and carry a quarter of the mean, so the learned mean must keep them. (A fence
    at 1.5 IQR of log minutes capped them at about 26 minutes: the mean came out 16 % short.)"""
    branch = get_branch(session, "demo")
    rng = np.random.default_rng(5)
    sigma = math.sqrt(math.log(1 + 0.5 ** 2))
    short = rng.lognormal(math.log(8.0) - sigma ** 2 / 2, sigma, 1900)
    long = rng.normal(60.0, 10.0, 100)
    visits = rng.permutation(np.concatenate([short, long]))
    _history(session, branch, {"A": list(visits)}, utc(2026, 2, 2, 1, 0))
    learned = estimate_learning.learn(session, branch, utc(2026, 2, 20, 1, 0))
    service = next(s.id for s in branch.services if s.code == "A")
    assert learned.service_means[service] == pytest.approx(float(visits.mean()), rel=0.03)
    assert learned.service_samples[service].max() > 55


def _counter_history(session, rng, cv: float, slower: float) -> tuple[list[float], list[float]]:
    """250 visits of service A per counter with a mean of 10 minutes, the last counter `slower`
    times as long; the learned speeds, and each counter's mean visit over all counters' mean."""
    branch = get_branch(session, "demo")
    counters = session.scalars(select(Counter).where(Counter.branch_id == branch.id)).unique().all()
    sigma = math.sqrt(math.log(1 + cv ** 2))
    visits = rng.lognormal(math.log(10.0) - sigma ** 2 / 2, sigma, 250 * len(counters))
    at = np.arange(1, len(visits) + 1) % len(counters)  # _history's counter of each visit
    visits[at == len(counters) - 1] *= slower
    _history(session, branch, {"A": list(visits)}, utc(2026, 2, 2, 1, 0))
    learned = estimate_learning.learn(session, branch, utc(2026, 2, 20, 1, 0))
    raw = [float(visits[at == i].mean() / visits.mean()) for i in range(len(counters))]
    return [learned.counter_speed[c.id] for c in counters], raw


def test_a_slower_counter_is_learned_as_slower(session):
    speeds, _ = _counter_history(session, np.random.default_rng(3), cv=0.6, slower=1.3)
    assert speeds[-1] / np.mean(speeds[:-1]) > 1.2


def test_counters_are_not_told_apart_by_chance_when_visits_vary_widely(session):
    """Equal counters, heavy-tailed visits (CV 1.5): a counter's mean visit differs from the others'
    by several per cent by chance, so its learned speed keeps well under that difference. (A fixed
    weight of 50 visits against the evidence kept five sixths of it, and a branch's longest waits
    were estimated worse for it.)"""
    speeds, raw = _counter_history(session, np.random.default_rng(8), cv=1.5, slower=1.0)
    assert max(raw) - min(raw) > 0.05  # the chance difference this test is about
    for speed, ratio in zip(speeds, raw):
        assert abs(speed - 1) <= 0.6 * abs(ratio - 1)


def test_thin_history_falls_back_on_the_configured_minutes(session):
    branch = get_branch(session, "demo")
    learned = estimate_learning.learn(session, branch, utc(2026, 2, 20, 1, 0))
    services = {s.code: s for s in branch.services}
    for service in services.values():
        assert learned.service_means[service.id] == pytest.approx(service.expected_minutes, rel=0.05)
        assert learned.service_visits[service.id] == 0


# --- honest states -----------------------------------------------------------------------------------

def _close_all_counters(session, branch):
    for counter in branch.counters:
        catalogue.update_counter(session, counter.id, state="closed")


def test_before_opening_the_estimate_says_when_counters_open(session):
    branch = get_branch(session, "demo")
    _close_all_counters(session, branch)
    ticket = queueing.issue_ticket(session, "demo", "A", now=MONDAY_0800_TAIPEI).ticket
    found = estimates.estimate_ticket(session, ticket, MONDAY_0800_TAIPEI)
    assert found.state == "no_counter"
    assert found.opens_at == utc(2026, 3, 2, 1, 0)  # 09:00 Taipei
    assert 60 <= found.minutes <= 70  # the hour until opening, then a quick visit at most
    assert found.as_dict(branch.zone)["opens_at"] == "2026-03-02T09:00+08:00"


def test_after_hours_there_is_no_fake_number(session):
    branch = get_branch(session, "demo")
    _close_all_counters(session, branch)
    evening = utc(2026, 3, 2, 10, 0)  # 18:00 Taipei, closed until tomorrow
    ticket = queueing.issue_ticket(session, "demo", "A", now=evening).ticket
    found = estimates.estimate_ticket(session, ticket, evening)
    assert (found.state, found.minutes) == ("closed", None)
    assert ticket.estimate_minutes is None


def test_a_service_no_counter_serves_today_says_so(session):
    branch = get_branch(session, "demo")
    catalogue.create_service(session, "demo", "D", "Safe deposit boxes", expected_minutes=15)
    ticket = queueing.issue_ticket(session, "demo", "D", now=MONDAY_0800_TAIPEI + timedelta(hours=2)).ticket
    found = estimates.estimate_ticket(session, ticket, MONDAY_0800_TAIPEI + timedelta(hours=2))
    assert (found.state, found.opens_at, found.minutes) == ("no_counter", None, None)
    assert branch.id == ticket.branch_id


def test_empty_queue_with_a_free_counter_is_called_at_once(session):
    branch = get_branch(session, "demo")
    ten = MONDAY_0800_TAIPEI + timedelta(hours=2)
    found = estimates.estimate_branch(session, branch, ten)
    assert found.tickets == {}
    for service in branch.services:
        assert (found.new_ticket[service.id].state, found.new_ticket[service.id].minutes) == ("waiting", 0)


def test_a_counter_whose_shift_has_ended_is_not_capacity(session):
    """Counter 2 alone serves B now; its shift stops at 10:00 and starts again at 13:30."""
    branch = get_branch(session, "demo")
    ten = MONDAY_0800_TAIPEI + timedelta(hours=2)  # 10:00 Taipei
    counters = {c.name: c for c in branch.counters}
    catalogue.update_counter(session, counters["Counter 3"].id, state="closed")
    weekday = {d: [["09:00", "10:00"], ["13:30", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    session.get(Counter, counters["Counter 2"].id).shifts = weekday
    session.get(Counter, counters["Counter 3"].id).shifts = {d: [["16:00", "17:00"]] for d in weekday}
    session.commit()
    first = queueing.issue_ticket(session, "demo", "B", now=ten - timedelta(minutes=5)).ticket
    assert queueing.call_next(session, counters["Counter 2"].id, now=ten - timedelta(minutes=5)).id == first.id
    second = queueing.issue_ticket(session, "demo", "B", now=ten - timedelta(minutes=1)).ticket
    found = estimates.estimate_ticket(session, second, ten - timedelta(minutes=1))
    # B001's 20-minute visit runs past 10:00, when Counter 2's shift ends: B002 waits for 13:30.
    assert found.state == "waiting" and 205 <= found.low <= found.minutes <= 215
    # Without the shift plan the same counter would call B002 when B001's visit ends.
    session.get(Counter, counters["Counter 2"].id).shifts = {}
    session.commit()
    estimate_learning.forget_learned()
    unplanned = estimates.estimate_ticket(session, second, ten - timedelta(minutes=1))
    assert unplanned.minutes < 40


# --- almost your turn -----------------------------------------------------------------------------------

def test_almost_your_turn_is_sent_once_with_a_message_for_a_customer_with_a_phone(session):
    ten = MONDAY_0800_TAIPEI + timedelta(hours=2)
    branch = get_branch(session, "demo")
    for counter in branch.counters:
        if counter.name != "Counter 1":
            catalogue.update_counter(session, counter.id, state="closed")
    tickets = [queueing.issue_ticket(session, "demo", "A", phone="+886 912 345 678" if i == 2 else None,
                                     now=ten + timedelta(seconds=i)).ticket for i in range(6)]
    counter_1 = next(c for c in branch.counters if c.name == "Counter 1")
    queueing.call_next(session, counter_1.id, now=ten + timedelta(seconds=10))
    later = ten + timedelta(seconds=20)
    sent = turn_alerts.send_almost_turn(session, now=later)
    alerted = set(session.scalars(select(Ticket.label).where(Ticket.almost_turn_at.is_not(None))))
    # Position 2 (one ahead) or fewer, or within 5 minutes: A002 and A003 at least; never the called one.
    assert {"A002", "A003"} <= alerted and "A001" not in alerted and sent == len(alerted)
    assert "A006" not in alerted
    assert turn_alerts.send_almost_turn(session, now=later + timedelta(seconds=30)) == 0
    messages = session.scalars(select(Notification).where(Notification.template == "almost_turn")).all()
    assert [(m.channel, m.recipient) for m in messages] == [("sms", "+886912345678")]
    assert "A003" in messages[0].payload["body"]
    events = session.scalars(select(TicketEvent.ticket_id).where(TicketEvent.type == "almost_turn")).all()
    assert sorted(events) == sorted(t.id for t in tickets if t.label in alerted)


def test_an_almost_your_turn_message_is_dropped_if_the_ticket_was_called_before_it_went_out(session, caplog):
    ten = MONDAY_0800_TAIPEI + timedelta(hours=2)
    branch = get_branch(session, "demo")
    counter_1 = next(c for c in branch.counters if c.name == "Counter 1")
    for counter in branch.counters:
        if counter is not counter_1:
            catalogue.update_counter(session, counter.id, state="closed")
    early = queueing.issue_ticket(session, "demo", "A", phone="+886 912 345 678", now=ten).ticket
    late = queueing.issue_ticket(session, "demo", "A", phone="+886 912 000 111", now=ten + timedelta(seconds=1)).ticket
    assert turn_alerts.send_almost_turn(session, now=ten + timedelta(seconds=5)) == 2
    # A001 is called before the outbox runs; A002 still waits.
    assert queueing.call_next(session, counter_1.id, now=ten + timedelta(seconds=10)).id == early.id
    driver = mail.driver_for({"QUEUE_APP_SMS_DRIVER": "log", "QUEUE_APP_MAIL_DRIVER": "console"})
    report = notify.send_due(session, driver, ten + timedelta(seconds=20))
    assert (report.sent, report.dropped) == (1, 1)
    session.expire_all()
    rows = {row.payload["ticket_id"]: row for row in
            session.scalars(select(Notification).where(Notification.template == "almost_turn"))}
    assert (rows[early.id].status, rows[early.id].last_error) == ("cancelled", "ticket is called")
    assert rows[late.id].status == "sent"


def _visits_with_gaps(session, branch, counter, start, gap, count, *, waiting=True, first_number=7000):
    """`count` visits of 6 minutes at one counter, the next called `gap` minutes after each
    finish; `waiting`: each next customer took a ticket before that finish."""
    service = next(s for s in branch.services if s.code == "A")
    called = start
    for number in range(first_number, first_number + count):
        issued = called - timedelta(minutes=20) if waiting else called - timedelta(seconds=1)
        session.add(Ticket(
            branch_id=branch.id, service_id=service.id, local_date=called.date(), prefix="A", number=number,
            label=f"A{number}", status="done", priority="normal", effective_at=issued, sort_key=issued,
            issued_at=issued, called_at=called, started_at=called, finished_at=called + timedelta(minutes=6),
            counter_id=counter.id, token_hash=f"gap-{number}",
        ))
        called += timedelta(minutes=6 + gap)
    session.commit()


def test_a_counters_pause_between_visits_is_learned_and_played(session):
    branch = get_branch(session, "demo")
    first, second = sorted(branch.counters, key=lambda c: c.id)[:2]
    # Monday 2026-02-02 from 09:30 Taipei, inside the morning's hours: 20 visits with two minutes of
    # paperwork after each while the next customer waited; and at another counter, pauses only
    # when nobody waited.
    _visits_with_gaps(session, branch, first, utc(2026, 2, 2, 1, 30), 2.0, 20)
    _visits_with_gaps(session, branch, second, utc(2026, 2, 2, 1, 30), 4.0, 20, waiting=False, first_number=8000)
    now = utc(2026, 2, 20, 2, 0)
    learned = estimate_learning.learn(session, branch, now)
    # The mean pause (2 min over 19 gaps) shrunk towards none by 20 visits' weight.
    assert learned.counter_gap[first.id] == pytest.approx(2.0 * 19 / (19 + estimate_learning.GAP_PRIOR))
    assert second.id not in learned.counter_gap  # idle for want of customers is not a pause
    for number in range(8):
        queueing.issue_ticket(session, "demo", "A", now=now + timedelta(seconds=number))
    with_gaps = estimates.estimate_branch(session, branch, now + timedelta(seconds=10), learned=learned)
    without = estimates.estimate_branch(session, branch, now + timedelta(seconds=10),
                                        learned=dataclasses.replace(learned, counter_gap={}))
    last = max(with_gaps.tickets)
    assert with_gaps.tickets[last].mean > without.tickets[last].mean + 0.3


def test_breaks_and_the_ends_of_shifts_are_not_pauses(session):
    branch = get_branch(session, "demo")
    counter = sorted(branch.counters, key=lambda c: c.id)[0]
    # Gaps of 25 minutes (a break), and visits called after closing time (17:00 Taipei).
    _visits_with_gaps(session, branch, counter, utc(2026, 2, 2, 1, 30), 25.0, 8)
    _visits_with_gaps(session, branch, counter, utc(2026, 2, 3, 9, 0), 3.0, 8, first_number=9000)
    learned = estimate_learning.learn(session, branch, utc(2026, 2, 20, 2, 0))
    assert learned.counter_gap.get(counter.id, 0.0) == 0.0
