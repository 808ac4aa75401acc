"""The same rules on PostgreSQL: migrations, race-free call-next and numbering, booking capacity."""
from collections import Counter as Tally

import pytest
from helpers import NY, TAIPEI, local, make_branch, make_counters, race, run_lobby, utc
from sqlalchemy import func, select

from queue_app.booking import operations as booking
from queue_app.booking.models import BookingSlot
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket, TicketEvent

# On PostgreSQL whatever the pass (pg_app, pg_session): run once, on the SQLite pass.
pytestmark = pytest.mark.own_postgres


def test_migrations_reach_the_models_on_postgres(pg_app, pg_session):
    assert pg_session.get_bind().dialect.name == "postgresql"
    version = pg_session.execute(select(func.version())).scalar_one()
    assert version.startswith("PostgreSQL")
    issued = queueing.issue_ticket(pg_session, "demo", "A", now=utc(2026, 6, 1, 2, 0))
    assert issued.ticket.label == "A001"


@pytest.mark.slow
def test_counters_racing_on_postgres_never_share_a_ticket(pg_session):
    counter_ids = make_counters(pg_session, 8)
    run_lobby(pg_session.get_bind(), counter_ids, total=1000)
    pg_session.expire_all()
    tickets = pg_session.scalars(select(Ticket)).all()
    assert len(tickets) == 1000
    assert max(Tally((t.local_date, t.label) for t in tickets).values()) == 1
    assert all(t.status == "done" for t in tickets)
    calls = Tally(pg_session.scalars(select(TicketEvent.ticket_id).where(TicketEvent.type == "called")))
    assert len(calls) == 1000 and max(calls.values()) == 1


@pytest.mark.parametrize(("capacity", "attempts", "winners"), [(1, 20, 1), (3, 10, 3)])
def test_simultaneous_bookings_on_postgres_never_exceed_capacity(pg_session, capacity, attempts, winners):
    make_branch(pg_session, "ny", "America/New_York", [["09:00", "17:00"]], counters=capacity)
    now = utc(2026, 6, 1, 12, 0)
    start = local(NY, 2026, 6, 2, 10, 0)
    outcomes = race(pg_session.get_bind(), [
        (lambda own, i=i: booking.book(own, "ny", "A", start, name="P", phone=f"+1212555{i:04d}", now=now).appointment.id)
        for i in range(attempts)
    ])
    assert sum(isinstance(o, int) for o in outcomes) == winners
    assert outcomes.count("slot_full") == attempts - winners
    pg_session.expire_all()
    assert pg_session.scalar(select(BookingSlot.booked).where(BookingSlot.start_at == start)) == winners


def test_two_reschedules_into_the_last_seat_on_postgres(pg_session):
    make_branch(pg_session, "ny", "America/New_York", [["09:00", "17:00"]], counters=1)
    now = utc(2026, 6, 1, 12, 0)
    first = booking.book(pg_session, "ny", "A", local(NY, 2026, 6, 2, 9, 0), name="A", phone="+12125550001", now=now)
    second = booking.book(pg_session, "ny", "A", local(NY, 2026, 6, 2, 9, 30), name="B", phone="+12125550002", now=now)
    target = local(NY, 2026, 6, 2, 11, 0)
    outcomes = race(pg_session.get_bind(), [
        lambda own: booking.reschedule(own, first.manage_token, target, now=now).id,
        lambda own: booking.reschedule(own, second.manage_token, target, now=now).id,
    ])
    assert outcomes.count("slot_full") == 1
    pg_session.expire_all()
    rows = {r.start_at: r.booked for r in pg_session.scalars(select(BookingSlot))}
    assert rows[target] == 1
    assert sum(rows.values()) == 2  # the loser still holds its own slot


def test_check_in_five_at_once_on_postgres_gives_one_ticket(pg_session):
    make_branch(pg_session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=2)
    made = booking.book(pg_session, "tp", "A", local(TAIPEI, 2026, 6, 2, 10, 0), name="A", phone="+886912000001",
                        now=local(TAIPEI, 2026, 6, 1, 9, 0))
    at = local(TAIPEI, 2026, 6, 2, 9, 45)
    code = made.appointment.check_in_code  # read here: the racing threads must not touch this session
    outcomes = race(pg_session.get_bind(), [
        lambda own: booking.check_in(own, "tp", code, now=at).ticket.id for _ in range(5)
    ])
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    assert pg_session.scalar(select(func.count(Ticket.id))) == 1
