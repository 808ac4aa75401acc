"""Retention: personal data on old visits goes, the visits stay for statistics, recent ones untouched."""
from datetime import timedelta

from helpers import utc
from sqlalchemy import func, select

from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.catalogue import operations as catalogue
from queue_app.customers import retention
from queue_app.customers.models import Customer
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket

T0 = utc(2025, 3, 3, 2, 0)  # 10:00 in Taipei, a Monday


def test_old_visits_lose_their_personal_data_and_keep_their_numbers(session):
    old = queueing.issue_ticket(session, "demo", "A", phone="+886911000001", now=T0).ticket
    counter = session.scalar(select(queueing.Counter.id).where(queueing.Counter.name == "Counter 1"))
    queueing.call_next(session, counter, now=T0)
    queueing.finish(session, old.id, now=T0 + timedelta(minutes=5))
    catalogue.update_branch(session, "demo", booking_rules={"min_notice_minutes": 0})
    made = booking.book(session, "demo", "B", T0 + timedelta(hours=1), name="Old Visitor", phone="+886911000002",
                        now=T0)
    booking.sweep_no_shows(session, now=T0 + timedelta(hours=2))  # it was missed
    now = T0 + timedelta(days=400)
    recent = queueing.issue_ticket(session, "demo", "A", phone="+886911000003", now=now - timedelta(days=2)).ticket

    purged = retention.purge_personal_data(session, timedelta(days=365), now=now)
    assert (purged.tickets, purged.appointments, purged.customers) == (1, 1, 2)
    assert purged.notifications >= 1  # the booking's confirmation SMS no longer names its recipient
    from queue_app.notifications.models import Notification

    assert set(session.scalars(select(Notification.recipient))) == {""}
    session.expire_all()
    assert session.get(Ticket, old.id).customer_id is None and session.get(Ticket, old.id).status == "done"
    appointment = session.get(Appointment, made.appointment.id)
    assert (appointment.name, appointment.customer_id, appointment.status) == ("", None, "no_show")
    # The contacts typed on old bookings and tickets go too (they carry the messages: identity.py).
    assert (appointment.phone, appointment.email) == (None, None)
    assert (session.get(Ticket, old.id).phone, session.get(Ticket, recent.id).phone) == (None, "+886911000003")
    phones = set(session.scalars(select(Customer.phone)))
    assert phones == {None, "+886911000003"}  # only the recent visitor is still identifiable
    assert session.get(Ticket, recent.id).customer_id is not None
    assert session.scalar(select(func.count(Ticket.id))) == 2  # statistics keep every visit
    again = retention.purge_personal_data(session, timedelta(days=365), now=now)
    assert again == retention.Purged(0, 0, 0, 0)
