"""Booking over REST against the seeded demo branch (Asia/Taipei), with the real clock."""
from datetime import datetime, timedelta, timezone

import pytest
from helpers import book, error_code, first_free_slot
from sqlalchemy import select

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Service
from queue_app.core.extensions import db
from queue_app.core.security import token_hash

STAFF = "staff1@demo.test"


def test_availability_lists_local_slots_with_remaining_capacity(api):
    response = api.call("GET", "/branches/demo/availability?service=B&days=7")
    assert response.json["timezone"] == "Asia/Taipei" and len(response.json["days"]) == 7
    slots = [s for d in response.json["days"] for s in d["slots"]]
    assert slots and all(s["start"].endswith("+08:00") for s in slots)
    assert {s["remaining"] for s in slots} <= {0, 1, 2}  # B is served by two counters
    assert api.call("GET", "/branches/demo/availability").status_code == 422
    assert error_code(api.call("GET", "/branches/demo/availability?service=Q")) == "service_not_found"
    assert api.call("GET", "/branches/demo/availability?service=B&days=100").status_code == 422
    assert api.call("GET", "/branches/demo/availability?service=B&from=yesterday").status_code == 422


def test_slots_say_whether_they_fall_inside_the_change_cut_off(api):
    plain = first_free_slot(api)
    assert plain["inside_cutoff"] is False  # the demo's notice (60 min) is as long as its cut-off
    week = 10_000  # minutes, about a week: every free time in the next few days is inside it
    assert api.call("PATCH", "/branches/demo", "admin@demo.test", json={
        "booking_rules": {"min_notice_minutes": 0, "change_cutoff_minutes": week}}).status_code == 200
    asked = datetime.now(timezone.utc)
    days = api.call("GET", "/branches/demo/availability?service=B&days=9").json["days"]
    slots = [s for d in days for s in d["slots"]]
    assert slots and {"start", "end", "remaining", "inside_cutoff"} == set(slots[0])
    for slot in slots:
        until = datetime.fromisoformat(slot["start"]) - timedelta(minutes=week)
        if abs(until - asked) > timedelta(minutes=1):  # not the one slot whose cut-off is this very minute
            assert slot["inside_cutoff"] is (until < asked), slot
    assert any(s["inside_cutoff"] for s in slots)


def test_the_branch_phone_is_set_through_the_api_and_checked(api):
    set_phone = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"phone": "02 2345 6789"})
    assert set_phone.status_code == 200 and set_phone.json["phone"] == "+886223456789"  # the branch is in TW
    assert api.call("GET", "/branches/demo").json["phone"] == "+886223456789"
    bad = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"phone": "call us"})
    assert bad.status_code == 422 and "phone" in bad.json["error"]["fields"]
    by_staff = api.call("PATCH", "/branches/demo", "staff1@demo.test", json={"phone": "+886 2 1111 2222"})
    assert by_staff.status_code == 403
    cleared = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"phone": None})
    assert cleared.status_code == 200 and cleared.json["phone"] is None


def test_book_view_reschedule_and_cancel_by_the_manage_link(api):
    slot = first_free_slot(api)
    made = book(api, slot["start"])
    assert made.status_code == 201, made.json
    booked = made.json
    assert booked["status"] == "booked" and booked["start"] == slot["start"] and len(booked["check_in_code"]) == 8
    # The link opens the page in the booking's language, whatever the browser prefers.
    assert booked["manage_url"].endswith(f"/a/{booked['manage_token']}?lang=en") and len(booked["manage_token"]) >= 22
    token = booked["manage_token"]
    seen = api.call("GET", f"/appointments/{token}")
    assert seen.status_code == 200 and seen.json["id"] == booked["id"] and "manage_token" not in seen.json
    assert error_code(api.call("GET", "/appointments/not-a-token")) == "appointment_not_found"
    later = [s for d in api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
             for s in d["slots"] if s["remaining"] > 0 and s["start"] > slot["start"]][3]
    moved = api.call("PATCH", f"/appointments/{token}", json={"start": later["start"]})
    assert moved.status_code == 200 and moved.json["start"] == later["start"] and moved.json["sequence"] == 1
    cancelled = api.call("DELETE", f"/appointments/{token}")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert error_code(api.call("DELETE", f"/appointments/{token}")) == "not_booked"


def test_booking_refusals(api):
    slot = first_free_slot(api)
    naive = book(api, slot["start"][:19])
    assert (naive.status_code, error_code(naive)) == (422, "naive_time")
    assert error_code(book(api, "tomorrow at ten")) == "invalid_time"
    start = datetime.fromisoformat(slot["start"])
    off_grid = book(api, (start + timedelta(minutes=7)).isoformat())
    assert (off_grid.status_code, error_code(off_grid)) == (409, "not_a_slot")
    far = book(api, (start + timedelta(days=90)).isoformat())
    assert error_code(far) == "outside_window"
    nobody = api.call("POST", "/branches/demo/appointments", json={"service": "B", "start": slot["start"], "name": "X"})
    assert (nobody.status_code, error_code(nobody)) == (422, "invalid_field")
    assert api.call("POST", "/branches/demo/appointments", json={"service": "B"}).status_code == 422


def test_a_double_tap_with_an_idempotency_key_books_once(api):
    slot = first_free_slot(api)
    body = {"service": "B", "start": slot["start"], "name": "A", "email": "a@example.com"}
    first, again = (api.client.post("/api/v1/branches/demo/appointments", headers={"Idempotency-Key": "tap-123"},
                                    json=body) for _ in range(2))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["manage_token"] == first.json["manage_token"]
    left = api.call("GET", f"/branches/demo/availability?service=B&from={slot['start'][:10]}&days=1").json
    assert next(s for s in left["days"][0]["slots"] if s["start"] == slot["start"])["remaining"] == slot["remaining"] - 1


def appointment_now(app, code="NOWCODE2"):
    """A booking starting in a few minutes, written directly: the API's clock cannot be frozen."""
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.slug == "demo"))
        service = db.session.scalar(select(Service).where(Service.code == "B", Service.branch_id == branch.id))
        start = datetime.now(timezone.utc).replace(second=0, microsecond=0)  # same local day, inside the window
        db.session.add(Appointment(
            branch_id=branch.id, service_id=service.id, name="Chen Mei-Ling", language="en", start_at=start,
            end_at=start + timedelta(minutes=20), local_date=start.astimezone(branch.zone).date(), status="booked",
            manage_token_hash=token_hash(code + "-manage"), check_in_code=code, sequence=0,
            created_at=datetime.now(timezone.utc)))
        db.session.commit()


def test_kiosk_check_in_gives_one_ticket_and_refuses_strangers(app, api):
    appointment_now(app)
    assert api.call("POST", "/branches/demo/check-in", json={"code": "NOWCODE2"}).status_code == 401
    first = api.call("POST", "/branches/demo/check-in", "kiosk", json={"code": "nowcode2"})
    assert first.status_code == 201, first.json
    assert first.json["label"] == "B001" and not first.json["repeat"] and "/t/" in first.json["track_url"]
    again = api.call("POST", "/branches/demo/check-in", "kiosk", json={"code": "NOWCODE2"})
    assert again.status_code == 200 and again.json["ticket_id"] == first.json["ticket_id"] and again.json["repeat"]
    unknown = api.call("POST", "/branches/demo/check-in", "kiosk", json={"code": "ZZZZZZZZ"})
    assert (unknown.status_code, error_code(unknown)) == (404, "unknown_code")
    today = api.call("GET", "/branches/demo/appointments", STAFF)
    assert today.status_code == 200 and today.json[0]["ticket_label"] == "B001" and today.json[0]["status"] == "checked_in"
    assert api.call("GET", "/branches/demo/appointments").status_code == 401


def test_staff_can_book_on_behalf_of_a_customer(api):
    slot = first_free_slot(api)
    made = api.call("POST", "/branches/demo/appointments", STAFF,
                    json={"service": "B", "start": slot["start"], "name": "Walk-up", "phone": "+886911111111"})
    assert made.status_code == 201


def test_check_in_codes_are_rate_limited_per_device(limited_app):
    app, token = limited_app(LOOKUP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [client.post("/api/v1/branches/demo/check-in", json={"code": f"GUESS{i:03d}"},
                         headers={"Authorization": f"Bearer {token}"}) for i in range(4)]
    assert [r.status_code for r in codes] == [404, 404, 404, 429]
    assert codes[-1].json["error"]["code"] == "too_many_requests"


@pytest.mark.parametrize("path", ["/branches/demo/availability?service=B", "/appointments/x"])
def test_public_booking_reads_need_no_token(api, path):
    assert api.call("GET", path).status_code in (200, 404)


def test_admin_sets_booking_rules_and_availability_follows(api):
    bad = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"booking_rules": {"slot_length": 30}})
    assert (bad.status_code, error_code(bad)) == (422, "invalid_field")
    ok = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"booking_rules": {"slot_minutes": 30}})
    assert ok.status_code == 200 and ok.json["booking_rules"] == {"slot_minutes": 30}
    starts = [s["start"] for d in api.call("GET", "/branches/demo/availability?service=A&days=7").json["days"]
              for s in d["slots"]]
    assert starts and {s[14:16] for s in starts} == {"00", "30"}


def test_a_manager_lifts_a_booking_pause(app, api):
    from queue_app.customers.models import Customer

    with app.app_context():
        customer = Customer(phone="+886900000001", email=None, name="", language="en", tier="standard", strikes=3,
                            booking_blocked_until=datetime.now(timezone.utc) + timedelta(days=20))
        db.session.add(customer)
        db.session.commit()
        customer_id = customer.id
    slot = first_free_slot(api)
    blocked = book(api, slot["start"], phone="+886900000001")
    assert (blocked.status_code, error_code(blocked)) == (409, "strikes_exceeded")
    assert api.call("POST", f"/customers/{customer_id}/unblock", STAFF).status_code == 403
    assert api.call("POST", "/customers/999999/unblock", "manager@demo.test").status_code == 404
    # The access policy: a manager lifts the pause of a customer their branch knows.
    assert api.call("POST", f"/customers/{customer_id}/unblock", "manager@demo.test").status_code == 403
    api.issue("A", phone="+886900000001")  # at the counter today: now a customer of this branch
    lifted = api.call("POST", f"/customers/{customer_id}/unblock", "manager@demo.test")
    assert lifted.status_code == 200 and lifted.json["booking_blocked_until"] is None
    assert book(api, slot["start"], phone="+886900000001").status_code == 201


def test_ticket_token_look_ups_are_rate_limited(limited_app):
    app, _token = limited_app(TRACK_RATE_LIMIT="3 per minute")
    client = app.test_client()
    guesses = [client.get(f"/api/v1/tickets/guess{i}").status_code for i in range(4)]
    assert guesses == [404, 404, 404, 429]
