"""People ahead (queue_order.py): one figure, the tickets the queue order calls before this one.

The phone page, the ticket API, the printed/kiosk ticket (lobby.ticket_status) and the "almost
your turn" alert (estimates.ahead) and the one-ticket query (queue_order.count_ahead) all say the
same number, and it is the truth: a ticket with n ahead is the (n+1)th call. Domain level,
explicit `now`.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from queue_app.booking import operations as booking
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.tickets import estimate_learning, estimates, queue_order, queueing, turn_alerts
from queue_app.tickets import read_models as lobby
from queue_app.tickets.models import Ticket

TAIPEI = ZoneInfo("Asia/Taipei")
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def at(hour, minute=0, second=0):
    return datetime(2026, 6, 2, hour, minute, second, tzinfo=TAIPEI)


@pytest.fixture
def branch(session):
    """Accounts (A) and Loans (L) share Desk 1; Desk 2 serves Loans only; Forex (F) has Desk 3 alone."""
    catalogue.create_branch(session, "pa", "Ahead", "Asia/Taipei", opening_hours={d: [["09:00", "17:00"]] for d in WEEK})
    for code, name in (("A", "Accounts"), ("L", "Loans"), ("F", "Forex")):
        catalogue.create_service(session, "pa", code, name, expected_minutes=7)
    catalogue.create_counter(session, "pa", "Desk 1", ["A", "L"], state="open")
    catalogue.create_counter(session, "pa", "Desk 2", ["L"], state="open")
    catalogue.create_counter(session, "pa", "Desk 3", ["F"], state="open")
    estimate_learning.forget_learned()
    yield catalogue.get_branch(session, "pa")
    estimate_learning.forget_learned()


def booked_ticket(session, service, start, check_in_at, phone):
    made = booking.book(session, "pa", service, start, name="Booked Person", phone=phone,
                        now=at(8, 0) - timedelta(days=1))
    return booking.check_in(session, "pa", made.appointment.check_in_code, now=check_in_at).ticket


def desk(session, name):
    return session.scalar(select(Counter.id).where(Counter.name == name, Counter.branch.has(slug="pa")))


def waiting(session, branch):
    return session.scalars(select(Ticket).where(Ticket.branch_id == branch.id, Ticket.status == "waiting")
                           .order_by(Ticket.id)).all()


def every_figure(session, branch, now):
    """{ticket id: (count_ahead, estimator's ahead, ticket_status ahead)} for the waiting tickets."""
    found = estimates.estimate_branch(session, branch, now, per_service=False, seed=1)
    return {t.id: (queue_order.count_ahead(session, t, now), found.ahead[t.id],
                   lobby.ticket_status(session, t, now)["ahead"]) for t in waiting(session, branch)}


@pytest.fixture
def mixed_queue(session, branch):
    """Walk-ins of all three services, a priority credit, a due booking and an early one."""
    for i, code in enumerate("AALFALAFLA"):
        queueing.issue_ticket(session, "pa", code, now=at(9, 40) + i * timedelta(minutes=1))
    queueing.issue_ticket(session, "pa", "A", priority="accessibility", issued_by="kiosk", now=at(9, 52))
    due = booked_ticket(session, "L", at(10, 0), at(9, 45), "+886912000001")
    early = booked_ticket(session, "A", at(10, 15), at(9, 58), "+886912000002")
    return due, early


def test_every_place_says_the_same_number_of_people_ahead(session, branch, mixed_queue):
    figures = every_figure(session, branch, at(10, 1))
    assert all(len(set(three)) == 1 for three in figures.values()), figures


def test_a_due_booking_has_nobody_ahead_and_is_called_on_the_next_press(session, branch, mixed_queue):
    """The issue's case: the phone said 7 ahead and was called on the next press."""
    due = mixed_queue[0]
    now = at(10, 1)
    assert queue_order.count_ahead(session, due, now) == 0
    assert lobby.ticket_status(session, due, now)["position"] == 1
    assert queueing.call_next(session, desk(session, "Desk 2"), now=now).id == due.id


def test_an_early_booking_counts_only_earlier_bookings_and_walk_ins_do_not_count_it(session, branch, mixed_queue):
    early = mixed_queue[1]
    now = at(10, 1)
    # At its start it goes before every walk-in; the due Loans booking shares Desk 1 and starts earlier.
    assert queue_order.count_ahead(session, early, now) == 1
    # A walk-in counts the due booking of a service sharing its counter, not the early one.
    first_accounts = next(t for t in waiting(session, branch) if t.label == "A001")
    assert queue_order.count_ahead(session, first_accounts, now) == 1
    # Forex shares no counter with Accounts or Loans: only its own line counts.
    forex = [t for t in waiting(session, branch) if t.prefix == "F"]
    assert [queue_order.count_ahead(session, t, now) for t in forex] == [0, 1]


def test_people_ahead_is_the_number_of_calls_before_this_one(session, branch):
    """One counter serving everything: ticket with n ahead is the (n+1)th call (nobody new arrives)."""
    session.execute(Counter.__table__.update().where(Counter.name != "Desk 1").values(state="closed"))
    session.commit()
    for i, code in enumerate("ALALLAAL"):
        queueing.issue_ticket(session, "pa", code, now=at(9, 40) + i * timedelta(minutes=1))
    queueing.issue_ticket(session, "pa", "L", priority="accessibility", issued_by="kiosk", now=at(9, 50))
    booked_ticket(session, "A", at(9, 45), at(9, 40), "+886912000003")
    booked_ticket(session, "L", at(10, 0), at(9, 50), "+886912000004")
    now = at(10, 5)  # both bookings due
    said = {t.id: queue_order.count_ahead(session, t, now) for t in waiting(session, branch)}
    order = []
    while (ticket := queueing.call_next(session, desk(session, "Desk 1"), now=now)) is not None:
        order.append(ticket.id)
        queueing.finish(session, ticket.id, now=now)
    assert [said[i] for i in order] == list(range(len(order)))


def test_the_almost_your_turn_alert_counts_the_same_people_ahead(session, branch, mixed_queue):
    due = mixed_queue[0]
    branch.almost_turn_position, branch.almost_turn_minutes = 1, 0
    session.commit()
    now = at(10, 1)
    alerted = {ticket_id for ticket_id, _ in turn_alerts.due_tickets(session, branch, now)}
    nobody_ahead = {t.id for t in waiting(session, branch) if queue_order.count_ahead(session, t, now) == 0}
    assert due.id in nobody_ahead and nobody_ahead <= alerted
