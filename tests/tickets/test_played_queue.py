"""The played queue (played_queue.py): a new walk-in's estimate is one more step on the last full
run, and equals a full run of the longer queue at the same moment.

Domain level on a real database (SQLite; PostgreSQL with QUEUE_APP_TEST_DATABASE=postgresql),
explicit `now` except where the background replay on the real clock is the point.
"""
import threading
import time
from datetime import datetime, timedelta

import pytest
from helpers import TAIPEI, WEEK
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from queue_app.booking import operations as booking
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.core import request_line
from queue_app.core.models import utcnow
from queue_app.tickets import estimate_learning, estimate_state, estimates, played_queue, queue_order, queueing


def at(hour, minute=0, second=0):
    return datetime(2026, 6, 2, hour, minute, second, tzinfo=TAIPEI)


@pytest.fixture
def branch(session):
    """Accounts (A) and Loans (L) share Desk 1, Desk 2 serves Loans only and closes at 12:00,
    Forex (F) has Desk 3 alone, no counter serves Export (X); open 09:00-17:00 every day (Taipei)."""
    catalogue.create_branch(session, "pq", "Played", "Asia/Taipei", opening_hours={d: [["09:00", "17:00"]] for d in WEEK})
    for code, name, minutes in (("A", "Accounts", 6), ("L", "Loans", 12), ("F", "Forex", 4), ("X", "Export", 9)):
        catalogue.create_service(session, "pq", code, name, expected_minutes=minutes)
    catalogue.create_counter(session, "pq", "Desk 1", ["A", "L"], state="open")
    catalogue.create_counter(session, "pq", "Desk 2", ["L"], state="open").shifts = {
        d: [["09:00", "12:00"]] for d in WEEK}
    session.commit()
    catalogue.create_counter(session, "pq", "Desk 3", ["F"], state="open")
    estimate_learning.forget_learned()
    played_queue.forget()
    yield catalogue.get_branch(session, "pq")
    estimate_learning.forget_learned()
    played_queue.forget()


def desk(session, name):
    return session.scalar(select(Counter.id).where(Counter.name == name, Counter.branch.has(slug="pq")))


def busy_morning(session, now):
    """Walk-ins of every service, one at a counter, a booking checked in early and one still to come."""
    for minute, code in enumerate("ALALFAALFLA"):
        queueing.issue_ticket(session, "pq", code, now=now - timedelta(minutes=30 - minute))
    queueing.call_next(session, desk(session, "Desk 1"), now=now - timedelta(minutes=3))
    for start, phone, check_in in ((at(10, 15), "+886912000001", True), (at(10, 45), "+886912000002", False)):
        made = booking.book(session, "pq", "A", start, name="Booked Person", phone=phone, now=now - timedelta(days=1))
        if check_in:
            booking.check_in(session, "pq", made.appointment.check_in_code, now=now - timedelta(minutes=1))


def full_run(session, branch, now):
    return estimates.estimate_branch(session, branch, now, per_service=False)


def test_a_walk_in_joining_is_one_step_and_equals_a_full_run(session, branch):
    now = at(10, 0)
    busy_morning(session, now)
    played_queue.play(session, branch, now)
    kept = played_queue.played_for(session, branch.id)
    for code in "LAFXLA":
        issued = queueing.issue_ticket(session, "pq", code, now=now)
        # Served by the kept queue (no new full run), extended by exactly this ticket.
        assert played_queue.played_for(session, branch.id) is kept
        assert kept.last_id == issued.ticket.id
        full = full_run(session, branch, now)
        assert issued.estimates.tickets[issued.ticket.id] == full.tickets[issued.ticket.id]
        assert issued.estimates.ahead[issued.ticket.id] == full.ahead[issued.ticket.id]
        assert issued.ticket.estimate_minutes == full.tickets[issued.ticket.id].minutes
        # Every other ticket's figures from the extended queue equal the full run's too.
        assert estimates.summarise(kept.queue, branch, per_service=False) == full
    # The display's per-service figures (a ticket taken now) as well.
    assert estimates.summarise(kept.queue, branch) == estimates.estimate_branch(session, branch, now)


def test_tickets_issued_elsewhere_are_picked_up_by_id(session, branch, app):
    """Another process (here another engine on the same database) issues between two of ours."""
    now = at(10, 0)
    busy_morning(session, now)
    played_queue.play(session, branch, now)
    kept = played_queue.played_for(session, branch.id)
    other_engine = create_engine(session.get_bind().url)
    try:
        with Session(other_engine) as other:
            elsewhere = queueing.issue_ticket(other, "pq", "L", now=now).ticket.id
    finally:
        other_engine.dispose()
    issued = queueing.issue_ticket(session, "pq", "A", now=now)
    assert played_queue.played_for(session, branch.id) is kept
    assert elsewhere in {w.id for w in kept.queue.state.waiting}
    full = full_run(session, branch, now)
    assert issued.estimates.tickets[issued.ticket.id] == full.tickets[issued.ticket.id]
    assert estimates.summarise(kept.queue, branch, per_service=False) == full


def test_a_priority_ticket_or_a_call_gets_a_full_run(session, branch):
    """A credit moves a ticket before people already played, and a call changes the play: one
    step cannot place them, so the estimate comes from a new full run (kept for the next ones)."""
    now = at(10, 0)
    busy_morning(session, now)
    for code in "AL":
        queueing.issue_ticket(session, "pq", code, now=now)
    played_queue.play(session, branch, now)
    kept = played_queue.played_for(session, branch.id)
    issued = queueing.issue_ticket(session, "pq", "A", priority="accessibility", issued_by="kiosk", now=now)
    replayed = played_queue.played_for(session, branch.id)
    assert replayed is not kept
    assert issued.estimates.tickets[issued.ticket.id] == full_run(session, branch, now).tickets[issued.ticket.id]

    queueing.call_next(session, desk(session, "Desk 3"), now=now)
    assert replayed.reordered  # announced after commit (core events bus)
    issued = queueing.issue_ticket(session, "pq", "F", now=now)
    assert played_queue.played_for(session, branch.id) is not replayed
    assert issued.estimates.tickets[issued.ticket.id] == full_run(session, branch, now).tickets[issued.ticket.id]


def test_an_older_played_queue_does_not_serve_an_explicit_clock(session, branch):
    now = at(10, 0)
    busy_morning(session, now)
    kept = played_queue.play(session, branch, now)
    later = now + timedelta(seconds=20)
    issued = queueing.issue_ticket(session, "pq", "A", now=later)
    assert played_queue.played_for(session, branch.id) is not kept
    assert issued.estimates.tickets[issued.ticket.id] == full_run(session, branch, later).tickets[issued.ticket.id]


def test_a_reordered_queue_is_replayed_in_the_background(session, branch, monkeypatch):
    """On the real clock: a committed call marks the kept queue reordered; the next live issue is
    still served from it (bounded staleness) and starts one replay on a background thread."""
    monkeypatch.setattr(played_queue, "REORDERED_AFTER_S", 0.0)  # replays are spaced; not here
    monkeypatch.setattr(played_queue, "REPLAY_COST_SHARE", 0)
    queueing.issue_ticket(session, "pq", "A")
    queueing.issue_ticket(session, "pq", "A")
    assert played_queue.wait_idle(10)  # a replay the issues started would replace ours
    kept = played_queue.play(session, branch, utcnow())
    queueing.call_next(session, desk(session, "Desk 1"))
    assert kept.reordered
    queueing.issue_ticket(session, "pq", "L")
    assert played_queue.wait_idle(10)
    replayed = played_queue.played_for(session, branch.id)
    assert replayed is not kept and not replayed.reordered
    waiting = {w.id for w in replayed.queue.state.waiting}
    assert len(waiting) == 2  # the called ticket is gone, the new one is in


def test_same_queue_same_figures():
    """Each ticket's draws are its own: estimates do not jitter between pushes, and a ticket's
    figures do not move when someone joins behind it on a counter it does not share."""
    now = at(10, 0)
    learned = estimate_learning.Learned({1: estimate_learning.prior_sample(6, 40), 2: estimate_learning.prior_sample(9, 40)},
                                        {1: 6.0, 2: 9.0}, {1: 40, 2: 40}, {}, 0.01, 0.1,
                                        estimate_learning.prior_sample(1, 20) - 8, now)
    from queue_app.tickets.estimate_state import BranchNow, CounterNow, WaitingNow

    def state(waiting):
        counters = [CounterNow(1, frozenset({1}), 1.0, [(0.0, float("inf"))]),
                    CounterNow(2, frozenset({2}), 1.0, [(0.0, float("inf"))])]
        return BranchNow(now, counters, [WaitingNow(i, s, now + timedelta(seconds=i)) for i, s in waiting], [])

    once = estimates._Queue(state([(1, 1), (2, 1), (3, 2)]), learned, 300).run().call
    again = estimates._Queue(state([(1, 1), (2, 1), (3, 2)]), learned, 300).run().call
    longer = estimates._Queue(state([(1, 1), (2, 1), (3, 2), (4, 2)]), learned, 300).run().call
    assert (once == again).all()
    assert (longer[:, :3] == once).all()


def test_replays_are_spaced_by_their_own_cost(session, branch):
    """A reorder brings the replay forward, but a long line's costly run is not repeated back to
    back: no sooner than twenty times its CPU time, and the kept queue serves until the next one
    has had time to land."""
    kept = played_queue.play(session, branch, at(10, 0))
    kept.cost_s, kept.wall_s = 0.005, 0.0  # a short line, played at once
    assert played_queue._replay_after(kept) == played_queue.REFRESH_AFTER_S
    kept.reordered = True
    assert played_queue._replay_after(kept) == played_queue.REORDERED_AFTER_S
    assert kept.serves_for_s() == played_queue.MAX_AGE_S
    kept.cost_s = 0.04  # 400 waiting
    assert played_queue._replay_after(kept) == pytest.approx(0.8)
    kept.cost_s = 0.2  # 2,000 waiting: at most a twentieth of a core on replays
    assert played_queue._replay_after(kept) == pytest.approx(4.0)
    kept.reordered = False
    assert played_queue._replay_after(kept) == pytest.approx(4.0)
    assert kept.serves_for_s() == pytest.approx(8.0)
    # Serving that long is what keeps the issuing requests from playing the long line in full.
    assert played_queue._serves(kept, branch, session, at(10, 0) + timedelta(seconds=7.5), live=True)
    assert not played_queue._serves(kept, branch, session, at(10, 0) + timedelta(seconds=8.5), live=True)
    # A replay that took turns with a busy line of requests took seconds: its next one will too.
    kept.wall_s = 3.0
    assert kept.serves_for_s() == pytest.approx(14.0)


def test_a_rolled_back_issue_leaves_no_ticket_in_the_played_queue(session, branch):
    """The ticket is played inside its transaction; if the commit then fails, the kept queue must
    not go on counting a ticket that does not exist. (A trigger makes the commit's flush fail: it
    writes the estimate kept on the ticket, after the play.)"""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the failing trigger is written for SQLite")
    now = at(10, 0)
    busy_morning(session, now)
    kept = played_queue.play(session, branch, now)
    session.execute(text("CREATE TRIGGER refuse_estimates BEFORE UPDATE OF estimate_minutes ON ticket "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    session.commit()
    with pytest.raises(IntegrityError):
        queueing.issue_ticket(session, "pq", "A", now=now)
    assert played_queue.played_for(session, branch.id) is None  # dropped, not kept with a phantom
    session.execute(text("DROP TRIGGER refuse_estimates"))
    session.commit()
    issued = queueing.issue_ticket(session, "pq", "A", now=now)
    assert kept.queue is not played_queue.played_for(session, branch.id).queue
    assert issued.estimates.tickets[issued.ticket.id] == full_run(session, branch, now).tickets[issued.ticket.id]


def test_people_ahead_at_issue_leave_out_who_was_called_since_the_run(session, branch, monkeypatch):
    """On the real clock a kept queue serves for a while after calls; the people ahead printed on
    the new ticket must still leave out those called meanwhile (in this process), as the queue
    order's own count does."""
    monkeypatch.setattr(played_queue, "REFRESH_AFTER_S", 60.0)  # no replay may hide the point
    monkeypatch.setattr(played_queue, "REORDERED_AFTER_S", 60.0)
    monkeypatch.setattr(played_queue, "MAX_AGE_S", 60.0)  # a slow machine must not make it play in full
    for code in "ALLA":
        queueing.issue_ticket(session, "pq", code)
    assert played_queue.wait_idle(10)
    kept = played_queue.play(session, branch, utcnow())
    queueing.call_next(session, desk(session, "Desk 1"))  # takes an A or an L
    queueing.call_next(session, desk(session, "Desk 2"))  # takes an L
    issued = queueing.issue_ticket(session, "pq", "L")
    assert played_queue.played_for(session, branch.id) is kept  # served by the kept queue
    assert issued.estimates.ahead[issued.ticket.id] == 2
    assert issued.estimates.ahead[issued.ticket.id] == queue_order.count_ahead(session, issued.ticket, utcnow())


def test_a_quiet_branchs_played_queue_is_not_kept(session, branch):
    """Memory: a played queue holds its replications per waiting ticket; one that can never serve
    again (no run for a minute) is dropped when another branch plays."""
    catalogue.create_branch(session, "pq2", "Other", "Asia/Taipei", opening_hours={d: [["09:00", "17:00"]] for d in WEEK})
    other = catalogue.get_branch(session, "pq2")
    played_queue.play(session, branch, at(10, 0))
    played_queue.play(session, other, at(10, 0, 30))
    assert played_queue.played_for(session, branch.id) is not None
    played_queue.play(session, other, at(10, 2))
    assert played_queue.played_for(session, branch.id) is None
    assert played_queue.played_for(session, other.id) is not None


def test_a_replay_taking_turns_with_requests_takes_in_what_happened_between_its_turns(session, branch, monkeypatch):
    """On the real clock, with the request line busy: a replay reads the line in its first turn
    and plays on in later ones. Tickets issued and a call made between its turns are in the queue
    it keeps (taken in, counted out), so the next issue does not have to play them all at once."""
    monkeypatch.setattr(played_queue, "REFRESH_AFTER_S", 0.0)
    monkeypatch.setattr(played_queue, "REPLAY_COST_SHARE", 0)
    request_line.configure(10.0)  # no turn overruns its slice here
    try:
        for _ in range(300):  # a run of 300 takes many 4 ms turns
            queueing.issue_ticket(session, "pq", "A")
        assert played_queue.wait_idle(10)
        with request_line.line.turn():  # a request's turn: the replay queues behind it
            played_queue.refresh_if_due(session.get_bind(), branch.id)
            deadline = time.monotonic() + 5
            while len(request_line.line) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.001)
        with request_line.line.turn():  # the next request, between the replay's first turn and its second
            joined = [queueing.issue_ticket(session, "pq", "F").ticket.id for _ in range(3)]
            called = queueing.call_next(session, desk(session, "Desk 1"))
            called_id, called_service = called.id, called.service_id
        assert played_queue.wait_idle(10)
    finally:
        request_line.configure(request_line.DEFAULT_SLICE_S)
    kept = played_queue.played_for(session, branch.id)
    assert kept.wall_s > kept.cost_s  # it waited for turns
    assert kept.last_id == max(joined)
    assert set(joined) <= kept.walk_in_ids
    assert called_id not in kept.walk_in_ids and kept.left == {called_service: 1}
    assert kept.reordered
    assert len(kept.queue.state.waiting) == 303  # the 300 it read, the 3 taken in


def test_kiosks_issuing_when_no_kept_queue_serves_wait_for_one_full_run(session, branch, monkeypatch):
    """After a restart (nothing kept) at a long line, every kiosk issuing at that moment would play
    the whole line itself, one after the other. Racing threads: one full run; the others are served
    from the queue it kept, with their own estimates and people ahead."""
    for _ in range(1000):  # a full run of 1,000 takes far longer than eight issuing transactions
        queueing.issue_ticket(session, "pq", "A")
    assert played_queue.wait_idle(10)
    played_queue.forget()  # a restart
    full_runs = []
    play_branch = estimates.play_branch

    def counted(*args, **kwargs):
        if kwargs.get("pace") is None:  # a request's own run, not a background replay
            full_runs.append(threading.get_ident())
        return play_branch(*args, **kwargs)

    monkeypatch.setattr(estimates, "play_branch", counted)
    start, issued, failures = threading.Barrier(8), {}, []

    def kiosk(n):
        try:
            with Session(session.get_bind()) as own:
                start.wait()
                made = queueing.issue_ticket(own, "pq", "A")
                issued[made.ticket.id] = made.estimates.ahead[made.ticket.id]
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures and len(issued) == 8
    assert len(full_runs) == 1
    session.expire_all()
    tickets = session.scalars(select(queueing.Ticket).where(queueing.Ticket.id.in_(issued))).all()
    assert all(t.estimate_minutes is not None for t in tickets)
    # Every one of the first 1,000 and those of the race issued before it are ahead.
    assert sorted(issued.values()) == list(range(1000, 1008))
    for ticket in tickets:
        assert issued[ticket.id] == queue_order.count_ahead(session, ticket, utcnow())


def test_a_paced_run_reads_the_line_in_turns_and_reads_the_same_line(session, branch):
    """A background replay reads the waiting line in blocks with a turn given away between them
    (reading and converting 2,600 tickets took 20 ms of CPU in one go), and reads what a plain
    read does."""
    for _ in range(150):
        queueing.issue_ticket(session, "pq", "A")
    assert played_queue.wait_idle(10)
    now = utcnow()
    learned = estimate_learning.learned_for(session, branch, now)
    turns = []
    paced = estimate_state.branch_now(session, branch, now, learned, pace=lambda: turns.append(now))
    plain = estimate_state.branch_now(session, branch, now, learned)
    assert len(plain.waiting) == 150 and paced.waiting == plain.waiting
    assert len(turns) == -(-150 // estimate_state.PACED_ROWS)
