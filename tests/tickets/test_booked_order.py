"""A booked visit is served at its time (queue_order.py): call_next, the estimator and the simulator.

From its booked start on, a checked-in booking goes before every walk-in (due bookings among
themselves by start); checked in early, it waits for its start unless the counter would otherwise
stand idle. Domain level, explicit `now`, on SQLite and (QUEUE_APP_TEST_DATABASE=postgresql)
PostgreSQL.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from queue_app.booking import operations as booking
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.core.errors import Invalid
from queue_app.tickets import estimate_learning, estimates, queue_order, queueing

TAIPEI = ZoneInfo("Asia/Taipei")
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
VISIT = timedelta(minutes=7)  # one service time


def at(hour, minute=0, second=0):
    return datetime(2026, 6, 2, hour, minute, second, tzinfo=TAIPEI)


@pytest.fixture
def branch(session):
    """One counter, one service, open 09:00-17:00 every day (Taipei)."""
    catalogue.create_branch(session, "bk", "Booked", "Asia/Taipei", opening_hours={d: [["09:00", "17:00"]] for d in WEEK})
    catalogue.create_service(session, "bk", "A", "Accounts", expected_minutes=7)
    catalogue.create_counter(session, "bk", "Desk 1", ["A"], state="open")
    estimate_learning.forget_learned()
    yield catalogue.get_branch(session, "bk")
    estimate_learning.forget_learned()


def counter_id(session):
    return session.scalar(select(Counter.id).join(Counter.branch).where(Counter.name == "Desk 1",
                                                                         Counter.branch.has(slug="bk")))


def booked_ticket(session, start, check_in_at, phone):
    made = booking.book(session, "bk", "A", start, name="Booked Person", phone=phone,
                        now=at(8, 0) - timedelta(days=1))
    return booking.check_in(session, "bk", made.appointment.check_in_code, now=check_in_at).ticket


def walk_ins(session, count, first=at(9, 0), every=timedelta(seconds=20)):
    return [queueing.issue_ticket(session, "bk", "A", now=first + i * every).ticket for i in range(count)]


def serve(session, counter, now):
    """Call next at `now`, finish it one service time later; returns (ticket, when it ends)."""
    ticket = queueing.call_next(session, counter, now=now)
    if ticket is None:
        return None, now
    queueing.finish(session, ticket.id, now=now + VISIT)
    return ticket, now + VISIT


def test_checked_in_early_with_50_walk_ins_waiting_is_called_within_one_service_time_of_the_start(session, branch):
    walk_ins(session, 50)  # all issued before the booking's start
    booked = booked_ticket(session, at(10, 0), at(9, 35), "+886912000001")
    counter = counter_id(session)
    calls, moment = [], at(9, 36)
    while True:
        ticket, moment = serve(session, counter, moment)
        calls.append((ticket.id, ticket.called_at))
        if ticket.id == booked.id:
            break
    called_at = calls[-1][1]
    assert at(10, 0) <= called_at < at(10, 0) + VISIT
    # Before the start every call went to a walk-in; at the first call from the start on, the booking.
    assert all(ticket_id != booked.id and when < at(10, 0) for ticket_id, when in calls[:-1])
    assert len(calls) == 5  # 09:36 09:43 09:50 09:57, then the booking at 10:04
    # Then the walk-ins go on in their order.
    assert serve(session, counter, moment)[0].label == "A005"


def test_call_next_before_start_takes_walk_ins_and_at_start_the_booking(session, branch):
    walk_ins(session, 50)
    booked = booked_ticket(session, at(10, 0), at(9, 40), "+886912000001")
    counter = counter_id(session)
    first, _ = serve(session, counter, at(9, 59, 59))
    assert first.id != booked.id and first.label == "A001"
    second, _ = serve(session, counter, at(10, 0))
    assert second.id == booked.id


def test_an_early_booking_is_called_rather_than_leaving_the_counter_idle(session, branch):
    booked = booked_ticket(session, at(10, 0), at(9, 35), "+886912000001")
    counter = counter_id(session)
    ticket, _ = serve(session, counter, at(9, 36))
    assert ticket.id == booked.id  # nobody else waits: not kept waiting for 24 minutes


def test_due_bookings_among_themselves_by_start(session, branch):
    walk_ins(session, 20)
    later = booked_ticket(session, at(10, 15), at(9, 50), "+886912000002")  # checked in first
    earlier = booked_ticket(session, at(10, 0), at(9, 55), "+886912000003")
    counter = counter_id(session)
    # 10:05: only the 10:00 booking is due; 10:10: the 10:15 one is not yet, a walk-in;
    # 10:20: the 10:15 booking; then the walk-ins again.
    assert serve(session, counter, at(10, 5))[0].id == earlier.id
    assert serve(session, counter, at(10, 12))[0].label == "A001"
    assert serve(session, counter, at(10, 20))[0].id == later.id
    assert serve(session, counter, at(10, 27))[0].label == "A002"


def test_both_due_the_earlier_start_goes_first(session, branch):
    walk_ins(session, 5)
    later = booked_ticket(session, at(10, 15), at(9, 50), "+886912000002")
    earlier = booked_ticket(session, at(10, 0), at(9, 55), "+886912000003")
    counter = counter_id(session)
    assert [serve(session, counter, at(10, 20 + 7 * i))[0].id for i in range(2)] == [earlier.id, later.id]


def test_the_python_key_and_the_sql_order_agree(session, branch):
    walk_ins(session, 3)
    early = booked_ticket(session, at(10, 30), at(10, 1), "+886912000002")
    due = booked_ticket(session, at(10, 0), at(9, 55), "+886912000003")
    now = at(10, 2)
    from queue_app.tickets.models import Ticket

    waiting = session.scalars(select(Ticket).where(Ticket.branch_id == branch.id, Ticket.status == "waiting")).all()
    in_python = [t.id for t in sorted(waiting, key=lambda t: queue_order.key(t.priority, t.effective_at, t.sort_key,
                                                                              t.id, now))]
    in_sql = session.scalars(select(Ticket.id).where(Ticket.branch_id == branch.id, Ticket.status == "waiting")
                             .order_by(*queue_order.claim_order(Ticket, now))).all()
    assert in_python == in_sql
    assert in_sql[0] == due.id and in_sql[-1] == early.id


def test_a_walk_in_cannot_claim_the_booked_visit_class(session, branch):
    for issued_by in ("staff", "kiosk"):
        with pytest.raises(Invalid) as refused:
            queueing.issue_ticket(session, "bk", "A", priority="appointment", issued_by=issued_by, now=at(9, 0))
        assert refused.value.code == "priority_not_allowed"


# --- the estimator plays the same order ------------------------------------------------------------

def test_the_estimate_of_an_early_booking_is_its_start_not_behind_all_walk_ins(session, branch):
    tickets = walk_ins(session, 50)
    booked = booked_ticket(session, at(10, 0), at(9, 35), "+886912000001")
    found = estimates.estimate_branch(session, branch, at(9, 35), seed=3)
    mine = found.tickets[booked.id]
    assert mine.state == "waiting"
    assert 25 <= mine.mean <= 25 + 7 + 1, mine  # called at its start, within about one visit
    # The walk-ins still come in their order, the booking taking one visit out of their line.
    means = [found.tickets[t.id].mean for t in tickets]
    assert means == sorted(means)
    assert means[-1] > 50 * 7 * 0.8
    assert found.tickets[tickets[10].id].mean > mine.mean > found.tickets[tickets[2].id].mean


def test_the_estimate_of_an_early_booking_alone_is_now(session, branch):
    booked = booked_ticket(session, at(10, 0), at(9, 35), "+886912000001")
    found = estimates.estimate_branch(session, branch, at(9, 35), seed=3)
    assert found.tickets[booked.id].minutes == 0  # the idle counter calls it


def test_a_booking_still_to_come_is_played_at_its_start(session, branch):
    """A booking not checked in yet takes a walk-in's place at its start (when it comes)."""
    tickets = walk_ins(session, 20)
    booking.book(session, "bk", "A", at(9, 30), name="Coming", phone="+886912000004",
                 now=at(8, 0) - timedelta(days=1))
    found = estimates.estimate_branch(session, branch, at(9, 10), seed=3)
    alone = estimates.estimate_branch(session, branch, at(9, 10), seed=3, learned=estimate_learning.Learned(
        **{**estimate_learning.learned_for(session, branch, at(9, 10)).__dict__, "no_show": 1.0}))
    # The last walk-ins wait about one visit longer for the booking (no-show rate aside).
    assert found.tickets[tickets[-1].id].mean > alone.tickets[tickets[-1].id].mean + 3


def test_a_counter_free_before_a_booking_is_due_serves_the_walk_ins_first(session):
    """Counters with different skills: a free counter calls a walk-in of its own services before a
    booking that is not due yet, even when walk-ins of another service wait ahead for the other
    counter past the booking's start (the estimator must not hand that counter to the booking)."""
    catalogue.create_branch(session, "sk", "Skills", "Asia/Taipei",
                            opening_hours={d: [["09:00", "17:00"]] for d in WEEK})
    catalogue.create_service(session, "sk", "A", "Accounts", expected_minutes=7)
    catalogue.create_service(session, "sk", "B", "Benefits", expected_minutes=7)
    both = catalogue.create_counter(session, "sk", "Desk 1", ["A", "B"], state="open")
    catalogue.create_counter(session, "sk", "Desk 2", ["B"], state="open")
    estimate_learning.forget_learned()
    try:
        queueing.issue_ticket(session, "sk", "A", now=at(9, 0))
        queueing.call_next(session, both.id, now=at(9, 0))  # Desk 1 busy; Desk 2 free
        line = [queueing.issue_ticket(session, "sk", "A", now=at(9, 0, 10 * i + 10)).ticket for i in range(4)]
        walk_in_b = queueing.issue_ticket(session, "sk", "B", now=at(9, 1)).ticket
        made = booking.book(session, "sk", "B", at(9, 15), name="Booked Person", phone="+886912000001",
                            now=at(8, 0) - timedelta(days=1))
        booked = booking.check_in(session, "sk", made.appointment.check_in_code, now=at(9, 1)).ticket
        found = estimates.estimate_branch(session, catalogue.get_branch(session, "sk"), at(9, 1), seed=3)
        # Desk 2 calls the B walk-in at once (the booking is not due for 14 minutes) ...
        assert found.tickets[walk_in_b.id].mean < 1, found.tickets[walk_in_b.id]
        # ... and the booking when it is free again, before its start rather than stand idle.
        assert found.tickets[booked.id].mean < 14, found.tickets[booked.id]
        # The A walk-ins wait for Desk 1 in their order, the booking taking none of its time.
        means = [found.tickets[t.id].mean for t in line]
        assert means == sorted(means) and means[-1] > 3 * 7 * 0.8
    finally:
        estimate_learning.forget_learned()


# --- the simulator ------------------------------------------------------------------------------

def test_the_simulator_serves_booked_visits_at_their_time_and_reports_start_and_call(tmp_path):
    from helpers import lines, short_scenario

    from queue_app.demo.scenarios import parse_scenario
    from queue_app.demo.simulation import simulate

    simulate(parse_scenario(short_scenario(days=1)), 7, tmp_path / "r.jsonl")
    rows = lines(tmp_path / "r.jsonl")
    booked = [r for r in rows if r["kind"] == "appointment"]
    assert booked and all(r["booked_start"] for r in booked)
    assert all(r["booked_start"] is None for r in rows if r["kind"] == "walk_in")
    delays = []
    for row in rows:
        if row["actual_wait_minutes"] is None:
            assert row["called_at"] is None
            continue
        called = datetime.fromisoformat(row["called_at"])
        issued = datetime.fromisoformat(row["issued_at"])
        assert abs((called - issued).total_seconds() / 60 - row["actual_wait_minutes"]) < 1 / 60 + 1e-9
        if row["kind"] == "appointment":
            delays.append((called - max(issued, datetime.fromisoformat(row["booked_start"]))).total_seconds() / 60)
    delays.sort()
    assert delays[int(0.9 * (len(delays) - 1))] <= 10, delays
    assert sum(delays) / len(delays) <= 4, delays


# --- the phone says it is a booked visit ---------------------------------------------------------

def test_the_tracking_page_and_api_say_booked_visit_and_its_time(app, client, session, branch):
    from queue_app.tickets import read_models as lobby

    made = booking.book(session, "bk", "A", at(10, 0), name="Booked Person", phone="+886912000001",
                        now=at(8, 0) - timedelta(days=1))
    done = booking.check_in(session, "bk", made.appointment.check_in_code, now=at(9, 35))
    assert lobby.ticket_status(session, done.ticket, at(9, 35))["booked_start"] == "2026-06-02T10:00+08:00"
    walk_in = walk_ins(session, 1)[0]
    assert lobby.ticket_status(session, walk_in, at(9, 35))["booked_start"] is None
    page = client.get(f"/t/{done.tracking_token}")
    assert page.status_code == 200 and "Booked visit 10:00" in page.get_data(as_text=True)
    chinese = client.get(f"/t/{done.tracking_token}?lang=zh_Hant")
    assert "預約 10:00" in chinese.get_data(as_text=True)
    tracked = client.get(f"/api/v1/tickets/{done.tracking_token}")
    assert tracked.status_code == 200 and tracked.json["booked_start"] == "2026-06-02T10:00+08:00"
