"""Customer identity and the one access policy (issue 15): typed contacts never redirect another
person's messages or change their record; staff of another branch reach no customer data."""
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.core.models import utcnow
from queue_app.customers.models import Customer
from queue_app.notifications import notify
from queue_app.notifications.models import Notification
from queue_app.tickets.models import Ticket

VERA_PHONE = "+886966000444"


def free_slots(api, service="B", count=4):
    days = api.call("GET", f"/branches/demo/availability?service={service}&days=7").json["days"]
    slots = [s["start"] for d in days for s in d["slots"] if s["remaining"] > 0]
    assert len(slots) >= count
    return slots[:count]


def book(api, start, *, phone=None, email=None, name="Vera Lin", service="B"):
    body = {"service": service, "start": start, "name": name}
    if phone:
        body["phone"] = phone
    if email:
        body["email"] = email
    return api.call("POST", "/branches/demo/appointments", json=body)


@pytest.fixture
def north(api):
    """A second branch with its own staff and manager, remote tickets allowed."""
    api.call("POST", "/branches", "admin@demo.test",
             json={"slug": "north", "name": "North", "timezone": "Asia/Taipei", "allow_remote_tickets": True})
    assert api.call("POST", "/branches/north/services", "admin@demo.test",
                    json={"code": "N", "name": "North desk", "expected_minutes": 5}).status_code == 201
    for email, role in (("north.staff@demo.test", "staff"), ("north.manager@demo.test", "manager")):
        assert api.call("POST", "/staff", "admin@demo.test", json={
            "email": email, "password": "demo-password", "role": role, "branches": ["north"]}).status_code == 201
    return {"staff": "north.staff@demo.test", "manager": "north.manager@demo.test"}


def test_a_phone_number_alone_does_not_take_over_someones_booking_mail(api, session, mailbox, driver):  # noqa: F811
    first, second = free_slots(api, count=2)
    attacker = book(api, first, phone="+886966000444", email="attacker@evil.test", name="Mallory")
    assert attacker.status_code == 201
    assert api.call("DELETE", f"/appointments/{attacker.json['manage_token']}").status_code == 200
    vera = book(api, second, phone="0966 000 444", email="vera@example.test", name="Vera Lin")
    assert vera.status_code == 201
    now = utcnow()
    notify.send_due(session, driver, now + timedelta(seconds=1))
    to_vera = [m for m in mailbox.messages if m["Subject"].startswith("Booking confirmed") and "Vera" in
               m.get_body(("plain",)).get_content()]
    assert [m["To"] for m in to_vera] == ["vera@example.test"]
    assert not any("Vera" in m.get_body(("plain",)).get_content() for m in mailbox.messages
                   if m["To"] == "attacker@evil.test")
    # Every message of her booking, reminders included, goes to what she typed.
    session.rollback()  # a fresh snapshot: the app committed in its own session
    appointment = session.scalar(select(Appointment).where(Appointment.name == "Vera Lin"))
    recipients = set(session.scalars(select(Notification.recipient)
                                     .where(Notification.appointment_id == appointment.id)))
    assert recipients == {"vera@example.test"}
    # The record her phone linked to is the first typist's, shown to staff as unverified; the
    # manager sees it so (unverified) rather than as Vera's.
    record = session.get(Customer, appointment.customer_id)
    assert record.phone == VERA_PHONE and record.email == "attacker@evil.test"
    api.issue("B", phone=VERA_PHONE)  # she is at the branch today
    shown = api.call("GET", f"/customers/{record.id}", "manager@demo.test").json
    assert shown["verified"] == {"phone": False, "email": False}
    # Her mail carries a link that proves her address: then the record is hers.
    body = to_vera[0].get_body(("plain",)).get_content()
    link = next(word for word in body.split() if "/a/" in word and "proof=" in word)
    opened = api.client.get(link.replace("http://kiosk.test", ""))
    assert opened.status_code == 302 and "proof=" not in opened.headers["Location"]
    assert "proven=1" in opened.headers["Location"]
    session.rollback()  # a fresh snapshot: the app committed in its own session
    record = session.get(Customer, appointment.customer_id)
    assert (record.email, record.name) == ("vera@example.test", "Vera Lin")
    assert record.email_verified_at is not None and record.phone_verified_at is None
    # Once proven, the attacker's own proof cannot take the address back.
    third = free_slots(api, count=3)[2]
    again = book(api, third, phone=VERA_PHONE, email="attacker@evil.test", name="Mallory")
    assert again.status_code == 201
    notify.send_due(session, driver, utcnow() + timedelta(seconds=2))
    mallory = [m for m in mailbox.messages if m["To"] == "attacker@evil.test"][-1]
    link = next(w for w in mallory.get_body(("plain",)).get_content().split() if "proof=" in w)
    api.client.get(link.replace("http://kiosk.test", ""))
    session.rollback()  # a fresh snapshot: the app committed in its own session
    record = session.get(Customer, appointment.customer_id)
    assert (record.email, record.name) == ("vera@example.test", "Vera Lin")


def test_a_remote_ticket_with_her_phone_does_not_rewrite_her_record(api, session, north):
    assert book(api, free_slots(api, count=1)[0], phone=VERA_PHONE, email="vera@example.test").status_code == 201
    before = session.scalar(select(Customer).where(Customer.phone == VERA_PHONE))
    language, name = before.language, before.name
    remote = api.call("POST", "/branches/north/tickets",
                      json={"service": "N", "phone": "+886 966-000-444", "language": "zh_Hans"})
    assert remote.status_code == 201, remote.json
    session.rollback()  # a fresh snapshot: the app committed in its own session
    after = session.get(Customer, before.id)
    assert (after.language, after.name, after.email) == (language, name, "vera@example.test")
    ticket = session.get(Ticket, remote.json["id"])
    assert (ticket.phone, ticket.email, ticket.language, ticket.customer_id) == (VERA_PHONE, None, "zh_Hans", before.id)


def test_a_stranger_cannot_use_up_or_block_her_bookings(api, session):
    from queue_app.booking.rules import rules_for
    from queue_app.catalogue.models import Branch

    rules = rules_for(session.scalar(select(Branch).where(Branch.slug == "demo")))
    slots = free_slots(api, count=rules.max_active_bookings + 2)
    for start in slots[:rules.max_active_bookings]:
        assert book(api, start, phone=VERA_PHONE, name="Stranger").status_code == 201
    refused = book(api, slots[-2], phone=VERA_PHONE, name="Stranger")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "limit_reached")
    # Her own booking, with her e-mail, is not the stranger's: it is accepted.
    assert book(api, slots[-2], phone=VERA_PHONE, email="vera@example.test").status_code == 201
    # Every booking lapses: no strikes for the record, no pause for her.
    session.rollback()
    later = max(a.start_at for a in session.scalars(select(Appointment))) + timedelta(hours=1)
    assert booking.sweep_no_shows(session, now=later) == rules.max_active_bookings + 1
    record = session.scalar(select(Customer).where(Customer.phone == VERA_PHONE))
    assert (record.strikes, record.booking_blocked_until) == (0, None)
    # The stranger's typed contacts are paused; hers are not.
    open_slots = [s.start for d in booking.availability(session, "demo", "B", days=7, now=later)["days"]
                  for s in d["slots"] if s.remaining > 0]
    with pytest.raises(booking.Conflict) as paused:
        booking.book(session, "demo", "B", open_slots[0], name="Stranger", phone=VERA_PHONE, now=later)
    assert paused.value.code == "strikes_exceeded"
    hers = booking.book(session, "demo", "B", open_slots[0], name="Vera Lin", phone=VERA_PHONE,
                        email="vera@example.test", now=later)
    assert hers.appointment.status == "booked"


def test_staff_of_another_branch_reach_no_customer(api, session, north):
    ticket = api.issue("A", phone=VERA_PHONE)  # a customer of demo only
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == VERA_PHONE))
    mine = api.call("POST", "/branches/north/tickets", north["staff"], json={"service": "N"}).json
    for who in (north["staff"], north["manager"]):
        assert api.call("GET", f"/customers/{customer_id}", who).status_code == 403
        attach = api.call("POST", f"/tickets/{mine['id']}/customer", who, json={"customer_id": customer_id})
        assert attach.status_code == 403 and "966" not in attach.get_data(as_text=True)
        for q in (VERA_PHONE, "0966000444", "000444"):
            found = api.call("GET", f"/branches/north/customers?q={q}", who)
            assert found.status_code == 200 and found.json == [], "an exact phone must not reveal a stranger"
    for method, path in (("POST", f"/customers/{customer_id}/unblock"), ("DELETE", f"/customers/{customer_id}"),
                         ("GET", f"/customers/{customer_id}/export")):
        assert api.call(method, path, north["manager"]).status_code == 403, path
    # Even after linking her at the north counter by the phone she gives, a north manager cannot
    # erase the person everywhere: her demo visits are demo's record.
    assert api.call("POST", f"/tickets/{mine['id']}/customer", north["staff"],
                    json={"phone": VERA_PHONE}).status_code == 200
    assert api.call("DELETE", f"/customers/{customer_id}", north["manager"]).status_code == 403
    assert session.get(Customer, customer_id) is not None
    assert ticket["id"]


def test_day_bookings_follow_the_policy(api, session):
    days = api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
    slots = [s["start"] for d in days for s in d["slots"] if s["remaining"] > 0]  # every free one of the week
    today = api.call("GET", "/branches/demo/appointments", "staff1@demo.test").json
    # Slots carry the branch's local date; "today" is the branch's (Taipei), not UTC's.
    local_today = utcnow().astimezone(ZoneInfo("Asia/Taipei")).date().isoformat()
    future_day = next(s for s in slots if s[:10] != local_today)[:10] if slots else None
    assert book(api, next(s for s in slots if s[:10] == future_day), phone=VERA_PHONE,
                email="vera@example.test").status_code == 201
    refused = api.call("GET", f"/branches/demo/appointments?date={future_day}", "staff1@demo.test")
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "not_today")
    full = api.call("GET", f"/branches/demo/appointments?date={future_day}", "manager@demo.test").json
    assert [(r["phone"], r["email"]) for r in full] == [(VERA_PHONE, "vera@example.test")]
    assert all(r["email"] is None and (r["phone"] is None or "•" in r["phone"]) for r in today)


def test_day_bookings_are_masked_for_staff_today(api, session):
    from datetime import datetime, time

    # A booking for today, made as if early this morning (branch time), so there is a free slot;
    # open every day, as the demo branch runs, so the test holds on a weekend too.
    from queue_app.catalogue import operations as catalogue
    from queue_app.catalogue.models import WEEKDAYS, Branch
    from queue_app.tickets import numbering

    catalogue.update_branch(session, "demo", opening_hours={d: [["00:00", "24:00"]] for d in WEEKDAYS})
    branch = session.scalar(select(Branch).where(Branch.slug == "demo"))
    today = numbering.local_day(utcnow(), branch.zone)
    morning = datetime.combine(today, time(0, 1), tzinfo=branch.zone)
    slots = [s.start for d in booking.availability(session, "demo", "B", today, 1, now=morning)["days"]
             for s in d["slots"] if s.remaining > 0]
    made = booking.book(session, "demo", "B", slots[-1], name="Vera Lin", phone=VERA_PHONE,
                        email="vera@example.test", now=morning)
    rows = api.call("GET", "/branches/demo/appointments", "staff1@demo.test").json
    row = next(r for r in rows if r["id"] == made.appointment.id)
    assert row["email"] is None and row["phone"].endswith("444") and "•" in row["phone"]
    manager = api.call("GET", "/branches/demo/appointments", "manager@demo.test").json
    assert next(r for r in manager if r["id"] == made.appointment.id)["email"] == "vera@example.test"


def test_erasure_clears_the_contacts_kept_on_bookings_and_tickets(api, session):
    api.issue("A", phone=VERA_PHONE, email="vera@example.test")
    assert book(api, free_slots(api, count=1)[0], phone=VERA_PHONE, email="vera@example.test").status_code == 201
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == VERA_PHONE))
    assert api.call("DELETE", f"/customers/{customer_id}", "manager@demo.test").status_code == 200
    session.rollback()  # a fresh snapshot: the app committed in its own session
    left = session.scalar(select(func.count()).select_from(Appointment).where(
        (Appointment.phone == VERA_PHONE) | (Appointment.email == "vera@example.test")))
    left += session.scalar(select(func.count()).select_from(Ticket).where(
        (Ticket.phone == VERA_PHONE) | (Ticket.email == "vera@example.test")))
    assert left == 0
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.recipient.in_([VERA_PHONE, "vera@example.test"]))) == 0
