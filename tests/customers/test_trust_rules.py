"""Trust rules (issue 15): who may give a ticket priority, whose an Idempotency-Key is, ids never reused."""
import uuid
from datetime import timedelta

import pytest
from helpers import NY, TAIPEI, error_code, first_free_slot, local, make_branch, race, utc
from sqlalchemy import func, select

from queue_app.accounts.models import Staff
from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch
from queue_app.core.errors import Invalid
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers import privacy as customer_privacy
from queue_app.customers.models import ChurnAlert, Customer
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket
from queue_app.webhooks import operations as webhooks
from queue_app.webhooks.models import WebhookDelivery

ADMIN = "admin@demo.test"
STAFF = "staff1@demo.test"
MANAGER = "manager@demo.test"


def allow_remote_tickets(api):
    assert api.call("PATCH", "/branches/demo", ADMIN, json={"allow_remote_tickets": True}).status_code == 200


def ticket_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count(Ticket.id)))


def appointment_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count(Appointment.id)))


# --- 1. priority only from staff and kiosks ---------------------------------------------------------

def test_an_anonymous_remote_ticket_cannot_jump_the_queue(app, api):
    """The repro: a phone asked for "accessibility" and went to position 1, ahead of the lobby."""
    allow_remote_tickets(api)
    for _ in range(3):
        api.issue("A")
    before = ticket_count(app)
    for priority in ("accessibility", "priority", "appointment"):
        refused = api.call("POST", "/branches/demo/tickets", json={"service": "A", "priority": priority})
        assert (refused.status_code, error_code(refused)) == (422, "priority_not_allowed"), refused.json
    assert ticket_count(app) == before  # nothing created
    plain = api.call("POST", "/branches/demo/tickets", json={"service": "A", "priority": "normal"})
    assert plain.status_code == 201 and plain.json["position"] == 4
    unsaid = api.call("POST", "/branches/demo/tickets", json={"service": "A"})
    assert unsaid.status_code == 201 and unsaid.json["position"] == 5


def test_the_kiosk_button_and_staff_still_give_priority(api):
    allow_remote_tickets(api)
    for _ in range(3):
        api.issue("A")
    kiosk = api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A", "priority": "accessibility"})
    assert kiosk.status_code == 201 and kiosk.json["position"] == 1, kiosk.json
    staff = api.call("POST", "/branches/demo/tickets", STAFF, json={"service": "A", "priority": "accessibility"})
    assert staff.status_code == 201 and staff.json["position"] == 2, staff.json


def test_the_domain_refuses_priority_unless_staff_or_a_kiosk_issues_it(session):
    for issued_by in ("public", None):
        kwargs = {} if issued_by is None else {"issued_by": issued_by}  # public unless said otherwise
        with pytest.raises(Invalid) as refused:
            queueing.issue_ticket(session, "demo", "A", priority="accessibility", **kwargs)
        assert refused.value.code == "priority_not_allowed"
    assert session.scalar(select(func.count(Ticket.id))) == 0
    assert queueing.issue_ticket(session, "demo", "A").ticket.priority == "normal"
    for issued_by in ("kiosk", "staff"):
        made = queueing.issue_ticket(session, "demo", "A", priority="accessibility", issued_by=issued_by)
        assert made.ticket.priority == "accessibility"
    with pytest.raises(ValueError):
        queueing.issue_ticket(session, "demo", "A", issued_by="someone")


# --- 2. Idempotency-Key scoped to the caller and the body --------------------------------------------

def post_booking(api, key, slot, email=None, name="Chen Mei-Ling", phone="+886912345678"):
    body = {"service": "B", "start": slot["start"], "name": name, "phone": phone}
    if email:
        body["email"] = email
    return api.client.post("/api/v1/branches/demo/appointments", json=body,
                           headers={"Idempotency-Key": key, **api.headers(email)})


def test_another_callers_body_with_the_same_key_gets_nothing(app, api):
    """The repro: a second caller reusing a key got the FIRST caller's booking and manage token."""
    slot = first_free_slot(api)
    first = post_booking(api, "guessable-1", slot)
    assert first.status_code == 201, first.json
    stranger = api.client.post("/api/v1/branches/demo/appointments", headers={"Idempotency-Key": "guessable-1"},
                               json={"service": "B", "start": slot["start"], "name": "Someone Else",
                                     "phone": "+886987654321"})
    assert (stranger.status_code, error_code(stranger)) == (422, "idempotency_key_reused"), stranger.json
    assert "manage_token" not in stranger.json and first.json["manage_token"] not in stranger.get_data(as_text=True)
    assert appointment_count(app) == 1  # nothing created either
    again = post_booking(api, "guessable-1", slot)  # the same body again: a replay, as before
    assert again.status_code == 200 and again.json["manage_token"] == first.json["manage_token"]
    assert appointment_count(app) == 1


def test_staff_keys_are_their_own(app, api):
    slots = [s for d in api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
             for s in d["slots"] if s["remaining"] > 0]
    public = post_booking(api, "dlg-1", slots[0])
    assert public.status_code == 201
    other_day = next(s for s in slots if s["start"][:10] != slots[0]["start"][:10] and s["remaining"] == 2)
    body = {"service": "B", "start": other_day["start"], "name": "For A Customer", "phone": "+886911111111"}
    made = {}
    for email in (STAFF, MANAGER):
        answer = api.client.post("/api/v1/branches/demo/appointments", json=body,
                                 headers={"Idempotency-Key": "dlg-1", **api.headers(email)})
        assert answer.status_code == 201, answer.json  # another caller's key: not a replay of theirs
        made[email] = answer.json
        replay = api.client.post("/api/v1/branches/demo/appointments", json=body,
                                 headers={"Idempotency-Key": "dlg-1", **api.headers(email)})
        assert replay.status_code == 200 and replay.json["manage_token"] == answer.json["manage_token"]
    assert len({public.json["id"], made[STAFF]["id"], made[MANAGER]["id"]}) == 3
    assert appointment_count(app) == 3


def test_the_longest_key_fits(app, api):
    """Keys may be 100 characters; the stored value was "<slug>:<key>", too long for the column."""
    slot = first_free_slot(api)
    made = post_booking(api, "k" * 100, slot)
    assert made.status_code == 201, made.json
    assert post_booking(api, "k" * 100, slot).status_code == 200


def test_the_same_key_and_body_racing_book_once(app, session):
    """Five identical requests at once: one booking, and every answer is that booking."""
    make_branch(session, "ny", "America/New_York", [["09:00", "17:00"]], counters=1)
    now = utc(2026, 6, 1, 12, 0)
    start = local(NY, 2026, 6, 2, 10, 0)
    outcomes = race(session.get_bind(), [
        lambda own: booking.book(own, "ny", "A", start, name="Tap Tap", phone="+12125550100", now=now,
                                 idempotency_key="ny:double-tap").appointment.id
        for _ in range(5)
    ])
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int), outcomes
    assert session.scalar(select(func.count(Appointment.id))) == 1


def test_the_same_key_with_another_body_in_the_domain(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=3)
    now = local(TAIPEI, 2026, 6, 1, 9, 0)
    at = local(TAIPEI, 2026, 6, 2, 10, 0)
    first = booking.book(session, "tp", "A", at, name="Lin", phone="+886912000001", now=now, idempotency_key="k")
    for changed in ({"name": "Wang"}, {"phone": "+886912000002"}, {"start": at + timedelta(minutes=15)},
                    {"language": "zh_Hant"}, {"email": "x@example.com"}):
        values = {"name": "Lin", "phone": "+886912000001", "start": at, **changed}
        with pytest.raises(Invalid) as refused:
            booking.book(session, "tp", "A", values.pop("start"), now=now, idempotency_key="k", **values)
        assert refused.value.code == "idempotency_key_reused"
    again = booking.book(session, "tp", "A", at, name=" Lin ", phone="+886912000001", now=now, idempotency_key="k")
    assert again.replayed and again.manage_token == first.manage_token
    assert session.scalar(select(func.count(Appointment.id))) == 1
    stored = session.get(Appointment, first.appointment.id)
    assert len(stored.idempotency_key) == len(stored.idempotency_fingerprint) == 64  # hashes, not the key


# --- 3. ids never reused --------------------------------------------------------------------------

def admin(session):
    return session.scalar(select(Staff).where(Staff.email == ADMIN))


def new_customer(session, phone):
    with write_transaction(session):
        customer = Customer(phone=phone, name="Someone", language="en", tier="standard", strikes=0,
                            created_at=utcnow())
        session.add(customer)
    return customer.id


def test_an_erased_customers_id_goes_to_nobody_else(session):
    new_customer(session, "+886912000100")
    erased = new_customer(session, "+886912000101")
    assert erased == session.scalar(select(func.max(Customer.id)))  # the highest row: SQLite reused its id
    customer_privacy.erase(session, erased, admin(session))
    assert session.get(Customer, erased) is None
    assert new_customer(session, "+886912000102") > erased


def test_a_merged_away_customers_id_goes_to_nobody_else(session):
    keep = new_customer(session, "+886912000200")
    other = new_customer(session, "+886912000201")
    customer_privacy.merge(session, keep, other, admin(session))
    assert new_customer(session, "+886912000202") > other


def test_a_deleted_webhook_endpoints_id_goes_to_no_other_endpoint(session):
    first = webhooks.create_endpoint(session, "demo", "https://hooks.example.com/a", ["ticket.called"]).endpoint.id
    webhooks.delete_endpoint(session, first)
    second = webhooks.create_endpoint(session, "demo", "https://hooks.example.com/b", ["ticket.called"]).endpoint.id
    assert second > first


def _churn_alert(session, customer_id):
    branch = session.scalar(select(Branch).where(Branch.slug == "demo"))
    return ChurnAlert(branch_id=branch.id, customer_id=customer_id, reason="valued_unseen",
                      last_visit_at=utcnow() - timedelta(days=uuid.uuid4().int % 1000 + 1), segment="core",
                      created_at=utcnow())


def _delivery(session, endpoint_id):
    return WebhookDelivery(endpoint_id=endpoint_id, event_id=uuid.uuid4().hex, event_type="ticket.called", body="{}",
                           status="delivered", next_attempt_at=utcnow(), created_at=utcnow())


@pytest.mark.parametrize("model", [ChurnAlert, WebhookDelivery])
def test_deleted_alert_and_delivery_ids_are_not_reused(session, model):
    customer_id = new_customer(session, "+886912000300")
    endpoint_id = webhooks.create_endpoint(session, "demo", "https://hooks.example.com/c", ["ticket.called"]).endpoint.id
    make = (lambda: _churn_alert(session, customer_id)) if model is ChurnAlert else (lambda: _delivery(session, endpoint_id))
    with write_transaction(session):
        row = make()
        session.add(row)
    gone = row.id
    with write_transaction(session):
        session.delete(session.get(model, gone))
    with write_transaction(session):
        row = make()
        session.add(row)
    assert row.id > gone


def test_migration_0012_keeps_rows_and_references_both_ways(app, seeded):
    """Down to 0011 and up again with a customer, a ticket and a booking referring to it: every
    row and reference stays (the SQLite rebuild needs foreign keys off, see migrations/env.py)."""
    from flask_migrate import downgrade, upgrade

    from queue_app import MIGRATIONS_DIR

    with app.app_context():
        phone = "+886912000400"
        queueing.issue_ticket(db.session, "demo", "A", phone=phone)
        customer_id = db.session.scalar(select(Customer.id).where(Customer.phone == phone))
        assert customer_id is not None
        db.session.commit()
        downgrade(directory=str(MIGRATIONS_DIR), revision="0011")
        upgrade(directory=str(MIGRATIONS_DIR))
        db.session.remove()
        assert db.session.scalar(select(Ticket.customer_id)) == customer_id
        with db.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
                for table in ("customer", "churn_alert", "webhook_endpoint", "webhook_delivery"):
                    sql = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar()
                    assert "AUTOINCREMENT" in sql, table
        erased = new_customer(db.session, "+886912000401")
        db.session.commit()
        customer_privacy.erase(db.session, erased, db.session.scalar(select(Staff).where(Staff.email == ADMIN)))
        assert new_customer(db.session, "+886912000402") > erased


def test_the_booking_page_says_what_happened_when_its_key_comes_back_with_other_details(client, api, app):
    from helpers import booking_form
    from helpers import post_booking as post_form

    data = booking_form(client, "zh_Hant")
    slot = first_free_slot(api)
    first = post_form(client, data, start=slot["start"])
    assert first.status_code == 201, first.json
    changed = post_form(client, data, start=slot["start"], name="Lin Kuo-Hua")  # the same form's key
    assert (changed.status_code, changed.json["error"]["code"]) == (422, "idempotency_key_reused")
    assert "重新整理頁面" in changed.json["error"]["message"] and "redirect" not in changed.json
    assert appointment_count(app) == 1
