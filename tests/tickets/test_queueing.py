from datetime import timedelta

import pytest
from helpers import utc
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket, TicketEvent

T0 = utc(2026, 3, 2, 2, 0)  # 10:00 in Taipei


def counter_id(session, name):
    return session.scalar(select(Counter.id).where(Counter.name == name))


def only_service(session, counter_name, code):
    catalogue.update_counter(session, counter_id(session, counter_name), services=[code])


def test_call_next_serves_in_issue_order_and_returns_none_when_empty(session):
    only_service(session, "Counter 1", "A")
    issued = [queueing.issue_ticket(session, "demo", "A", now=T0 + timedelta(seconds=i)).ticket.label for i in range(3)]
    c1 = counter_id(session, "Counter 1")
    called = []
    for i in range(3):
        ticket = queueing.call_next(session, c1, now=T0 + timedelta(minutes=1, seconds=i))
        called.append(ticket.label)
        queueing.finish(session, ticket.id, now=T0 + timedelta(minutes=2, seconds=i))
    assert called == issued
    assert queueing.call_next(session, c1, now=T0 + timedelta(minutes=3)) is None


def test_accessibility_credit_moves_ahead_by_at_most_its_credit(session):
    only_service(session, "Counter 1", "A")
    c1 = counter_id(session, "Counter 1")
    early = queueing.issue_ticket(session, "demo", "A", now=T0).ticket.label  # 11 min before the priority one
    recent = queueing.issue_ticket(session, "demo", "A", now=T0 + timedelta(minutes=5)).ticket.label
    priority = queueing.issue_ticket(session, "demo", "A", priority="accessibility", issued_by="kiosk",
                                     now=T0 + timedelta(minutes=11)).ticket.label
    order = []
    for i in range(3):
        ticket = queueing.call_next(session, c1, now=T0 + timedelta(minutes=12, seconds=i))
        order.append(ticket.label)
        queueing.finish(session, ticket.id, now=T0 + timedelta(minutes=12, seconds=i))
    # The 10-minute credit beats the ticket 6 minutes older, not the one 11 minutes older.
    assert order == [early, priority, recent]


def test_a_normal_ticket_is_not_starved_by_a_stream_of_priority_tickets(session):
    """Bound: a ticket is called before every ticket issued MAX_CREDIT or more after it (ties go to the older)."""
    only_service(session, "Counter 1", "A")
    c1 = counter_id(session, "Counter 1")
    normal = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    clock = T0
    called_before_normal = 0
    # One accessibility ticket a minute, and the counter serves one a minute: a steady high-class stream.
    for minute in range(1, 60):
        clock = T0 + timedelta(minutes=minute)
        queueing.issue_ticket(session, "demo", "A", priority="accessibility", issued_by="kiosk", now=clock)
        ticket = queueing.call_next(session, c1, now=clock + timedelta(seconds=30))
        queueing.finish(session, ticket.id, now=clock + timedelta(seconds=40))
        if ticket.id == normal.id:
            break
        issued_after = ticket.issued_at - normal.issued_at
        assert issued_after < queueing.MAX_CREDIT
        called_before_normal += 1
    else:
        pytest.fail("the normal ticket was never called")
    assert called_before_normal == 9  # exactly the priority tickets issued less than 10 minutes later


def test_state_machine_refuses_actions_in_the_wrong_state(session):
    c1 = counter_id(session, "Counter 1")
    ticket = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    with pytest.raises(Conflict) as error:
        queueing.start(session, ticket.id, now=T0)
    assert error.value.code == "wrong_state"
    called = queueing.call_next(session, c1, now=T0)
    assert called.id == ticket.id
    with pytest.raises(Conflict) as error:
        queueing.call_next(session, c1, now=T0)
    assert error.value.code == "counter_busy"
    queueing.recall(session, ticket.id, now=T0)
    queueing.start(session, ticket.id, now=T0 + timedelta(minutes=1))
    queueing.finish(session, ticket.id, now=T0 + timedelta(minutes=7))
    with pytest.raises(Conflict):
        queueing.finish(session, ticket.id, now=T0 + timedelta(minutes=8))
    types = session.scalars(select(TicketEvent.type).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)).all()
    assert types == ["issued", "called", "recalled", "started", "finished"]


def test_recall_is_limited_then_no_show(session):
    c1 = counter_id(session, "Counter 1")
    ticket = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    queueing.call_next(session, c1, now=T0)
    for _ in range(queueing.MAX_RECALLS):
        queueing.recall(session, ticket.id, now=T0)
    with pytest.raises(Conflict) as error:
        queueing.recall(session, ticket.id, now=T0)
    assert error.value.code == "recall_limit"
    assert queueing.no_show(session, ticket.id, now=T0).status == "no_show"


def test_transfer_keeps_label_and_place_in_time(session):
    c1 = counter_id(session, "Counter 1")  # serves A, C
    c3 = counter_id(session, "Counter 3")  # serves B, C
    only_service(session, "Counter 3", "B")
    first = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    later_b = queueing.issue_ticket(session, "demo", "B", now=T0 + timedelta(minutes=3)).ticket
    queueing.call_next(session, c1, now=T0 + timedelta(minutes=4))
    moved = queueing.transfer(session, first.id, "b", now=T0 + timedelta(minutes=5))
    assert (moved.label, moved.status, moved.counter_id) == ("A001", "waiting", None)
    # Issued before B001, so it comes first in B's queue.
    assert queueing.call_next(session, c3, now=T0 + timedelta(minutes=6)).id == first.id
    assert later_b.status == "waiting"
    with pytest.raises(Conflict):
        queueing.transfer(session, first.id, "B", now=T0 + timedelta(minutes=7))
    with pytest.raises(NotFound):
        queueing.transfer(session, first.id, "Z", now=T0 + timedelta(minutes=7))


def test_closed_counter_cannot_call_and_leave_removes_from_queue(session):
    c2 = counter_id(session, "Counter 2")
    catalogue.update_counter(session, c2, state="closed")
    with pytest.raises(Conflict) as error:
        queueing.call_next(session, c2, now=T0)
    assert error.value.code == "counter_not_open"
    ticket = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    assert queueing.leave(session, ticket.id, now=T0).status == "cancelled"
    with pytest.raises(Conflict):
        queueing.leave(session, ticket.id, now=T0)


def test_yesterdays_tickets_are_not_called_and_are_closed_by_the_day_end_sweep(session):
    c1 = counter_id(session, "Counter 1")
    stale = queueing.issue_ticket(session, "demo", "A", now=T0 - timedelta(days=1)).ticket
    assert queueing.call_next(session, c1, now=T0) is None
    assert queueing.close_day(session, "demo", now=T0) == 1
    assert queueing.close_day(session, "demo", now=T0) == 0
    assert session.get(Ticket, stale.id).status == "cancelled"


def test_bad_values_are_refused(session):
    with pytest.raises(NotFound):
        queueing.issue_ticket(session, "nowhere", "A")
    with pytest.raises(NotFound):
        queueing.issue_ticket(session, "demo", "Q")
    with pytest.raises(Invalid):
        queueing.issue_ticket(session, "demo", "A", priority="vip-please")
    with pytest.raises(Invalid):
        catalogue.create_branch(session, "x", "X", "Mars/Olympus")
    with pytest.raises(Invalid):
        catalogue.update_branch(session, "demo", opening_hours={"mon": [["17:00", "09:00"]]})
