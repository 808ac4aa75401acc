"""Booking pages on the seeded demo branch (Asia/Taipei): /b/<slug>, /a/<token>, its calendar
file, the kiosk's check-in endpoint, the staff console's bookings and the branch list.

Real SQLite through the app's fixtures, the real clock (bookings that must start "now" are
written directly as rows, as in test_booking_api.py).
"""
import re
from datetime import datetime, timedelta, timezone

import icalendar
import pytest
from helpers import (
    NAME,
    add_appointment,
    booking_form,
    first_free_slot,
    login,
    now_minute,
    page_data,
    post_booking,
    taipei_today,
)
from sqlalchemy import func, select

from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.booking.operations import CODE_ALPHABET
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Service
from queue_app.core.extensions import db
from queue_app.customers.models import Customer
from queue_app.notifications import notify
from queue_app.notifications.models import Notification

OTHER_NAME = "Lin Kuo-Hua"


def count_appointments(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Appointment.id)))


# ---- /b/<slug> ---------------------------------------------------------------------------------

def test_booking_page_lists_bookable_services_and_passes_its_data(client, session):
    service = session.scalar(select(Service).where(Service.code == "C"))
    catalogue.update_service(session, service.id, booking_enabled=False)
    page = client.get("/b/demo")
    html = page.data.decode()
    assert page.status_code == 200 and '<html lang="en"' in html
    assert "Book a visit" in html and "Accounts and deposits" in html and "Loans and mortgages" in html
    assert "Cards and enquiries" not in html  # not bookable online
    assert 'name="website"' in html and 'tabindex="-1"' in html  # the honeypot, out of reach
    assert "<script>" not in html  # data block and files only
    data = page_data(page.data)
    assert data["availability_url"] == "/api/v1/branches/demo/availability"
    assert data["book_url"] == "/b/demo/book?lang=en" and data["csrf_token"]
    assert data["timezone"] == "Asia/Taipei" and data["calendar"]["intl"] == "en-GB"
    assert data["messages"]["slot_full"] == "That time was just taken, pick another."


def test_booking_page_in_traditional_chinese(client, seeded):
    page = client.get("/b/demo?lang=zh_Hant")
    html = page.data.decode()
    assert page.status_code == 200 and '<html lang="zh-Hant"' in html
    assert "預約" in html and 'aria-current="true">繁體中文' in html
    data = page_data(page.data)
    assert data["book_url"] == "/b/demo/book?lang=zh_Hant" and data["calendar"]["intl"] == "zh-TW"
    assert "{date}" in data["calendar"]["when"] and "（" in data["calendar"]["when"]
    assert client.get("/b/demo", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).data.decode().count('lang="zh-Hans"') >= 1


def test_unknown_branch_is_a_branded_404(client, seeded):
    page = client.get("/b/nowhere")
    assert page.status_code == 404 and b"Branch not found" in page.data and b"app.css" in page.data


def test_the_honeypot_refuses_a_bot_and_books_nothing(client, api, app):
    data = booking_form(client)
    slot = first_free_slot(api)
    refused = post_booking(client, data, start=slot["start"], website="http://cheap-pills.example")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "rejected"
    assert count_appointments(app) == 0


def test_booking_needs_the_csrf_token(client, api, app):
    booking_form(client)
    slot = first_free_slot(api)
    refused = client.post("/b/demo/book", json={"service": "B", "start": slot["start"], "name": NAME, "phone": "0912345678"})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf_failed"
    assert count_appointments(app) == 0


def test_the_form_books_and_a_double_submit_books_once(client, api, app):
    data = booking_form(client, "zh_Hant")
    slot = first_free_slot(api)
    first = post_booking(client, data, start=slot["start"], email="mei@example.com")
    again = post_booking(client, data, start=slot["start"], email="mei@example.com")
    assert (first.status_code, again.status_code) == (201, 200), first.json
    assert first.json["redirect"] == again.json["redirect"]
    assert first.json["redirect"].startswith("/a/") and "new=1" in first.json["redirect"]
    assert count_appointments(app) == 1
    with app.app_context():
        appointment = db.session.scalar(select(Appointment))
        assert appointment.language == "zh_Hant"  # the page's language: mail in the customer's language
        assert appointment.check_in_code == first.json["check_in_code"]
        assert appointment.idempotency_key == booking._idempotency("demo:form-key-1", None, {})[0]  # hashed with its caller
    page = client.get(first.json["redirect"])
    assert page.status_code == 200 and first.json["check_in_code"] in page.data.decode()


def test_form_refusals_name_the_fields_and_the_slot(client, api, session):
    data = booking_form(client)
    slot = first_free_slot(api)
    empty = post_booking(client, data, start=slot["start"], name=" ", phone="")
    assert empty.status_code == 422 and set(empty.json["error"]["fields"]) == {"name", "phone"}
    assert empty.json["error"]["fields"]["phone"].startswith("Please give a mobile number or an e-mail")
    bad = post_booking(client, data, key="k2", start=slot["start"], phone="", email="not-an-address")
    assert bad.status_code == 422 and bad.json["error"]["fields"] == {"email": "This does not look like an e-mail address."}
    # Every field's problem in one answer, not the first one met.
    everything = post_booking(client, data, key="k3", start=slot["start"], name="", phone="12", email="nope")
    assert everything.status_code == 422 and everything.json["error"]["fields"] == {
        "name": "Please enter your name.", "phone": "This does not look like a phone number.",
        "email": "This does not look like an e-mail address."}
    both = post_booking(client, data, key="k4", start=slot["start"], phone="+886 12", email="nope@")
    assert set(both.json["error"]["fields"]) == {"phone", "email"}
    # Service B has two counters: the third booking of one slot finds it full.
    for n in range(slot["remaining"]):
        assert post_booking(client, data, key=f"k-fill-{n}", start=slot["start"], phone=f"+88691234000{n}").status_code == 201
    full = post_booking(client, data, key="k-full", start=slot["start"], phone="+886912340099")
    assert full.status_code == 409 and full.json["error"] == {
        "code": "slot_full", "message": "That time was just taken, pick another."}
    zh = booking_form(client, "zh_Hant")
    full_zh = post_booking(client, zh, key="k-full-zh", start=slot["start"], phone="+886912340098")
    assert full_zh.json["error"]["code"] == "slot_full" and "選擇" in full_zh.json["error"]["message"]


def test_strikes_and_limits_are_shown_as_sentences(client, api, session):
    customer = Customer(phone="+886955555555", name=NAME, language="en", tier="standard", strikes=3,
                        booking_blocked_until=datetime.now(timezone.utc) + timedelta(days=10))
    session.add(customer)
    session.commit()
    data = booking_form(client)
    refused = post_booking(client, data, start=first_free_slot(api)["start"], phone="+886955555555")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "strikes_exceeded"
    assert refused.json["error"]["message"].startswith("Online booking is paused")


# ---- /a/<token> --------------------------------------------------------------------------------

def book_via_api(api, name=NAME, phone="+886912345678", offset=0):
    slots = [s for d in api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
             for s in d["slots"] if s["remaining"] > 0]
    made = api.call("POST", "/branches/demo/appointments",
                    json={"service": "B", "start": slots[offset]["start"], "name": name, "phone": phone})
    assert made.status_code == 201, made.json
    return made.json


def test_manage_page_shows_the_code_and_only_this_booking(client, api):
    mine = book_via_api(api)
    theirs = book_via_api(api, name=OTHER_NAME, phone="+886900000001", offset=1)
    page = client.get(f"/a/{mine['manage_token']}?new=1")
    html = page.data.decode()
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    code = mine["check_in_code"]
    assert f"<span>{code[:4]}</span><span>{code[4:]}</span>" in html
    assert '<svg class="qr"' in html and f"QR code of your check-in code {code}" in html
    assert "Your visit is booked" in html and "Loans and mortgages" in html and "Demo Branch" in html
    start = datetime.fromisoformat(mine["start"])
    assert f"{start:%H:%M} (Asia/Taipei)" in html and f"{start.day} {start:%B %Y}" in html
    assert NAME in html
    assert OTHER_NAME not in html and theirs["check_in_code"] not in html
    assert "Reschedule" in html and "Cancel booking" in html and "Add to calendar" in html
    data = page_data(page.data)
    assert data["appointment_url"] == f"/api/v1/appointments/{mine['manage_token']}"
    assert data["start"] == mine["start"] and data["service"] == "B"
    assert "<script>" not in html


def test_manage_page_in_traditional_chinese(client, api):
    mine = book_via_api(api)
    html = client.get(f"/a/{mine['manage_token']}?lang=zh_Hant").data.decode()
    assert '<html lang="zh-Hant"' in html and "報到碼" in html and "（Asia/Taipei）" in html and "星期" in html


def test_unknown_manage_link_is_a_branded_404_without_referrer(client, seeded):
    page = client.get("/a/not-a-real-token")
    assert page.status_code == 404 and b"Booking not found" in page.data and b"app.css" in page.data
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert client.get("/a/not-a-real-token/calendar.ics").status_code == 404


def test_calendar_file_has_the_stable_uid_and_the_times(client, api):
    mine = book_via_api(api)
    response = client.get(f"/a/{mine['manage_token']}/calendar.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "attachment" in response.headers["Content-Disposition"]
    calendar = icalendar.Calendar.from_ical(response.data)
    event = next(iter(calendar.walk("VEVENT")))
    assert str(event["UID"]) == f"appointment-{mine['id']}@kiosk.test"  # the same UID as the confirmation mail's
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert event.decoded("DTSTART") == datetime.fromisoformat(mine["start"])
    assert mine["check_in_code"] in str(event["DESCRIPTION"])
    assert str(event["SUMMARY"]) == "Loans and mortgages at Demo Branch"


CANCEL_ONLY = "You can cancel until the visit starts; changes are no longer possible online."
CALL_DEMO = "To change it, call the branch at +886223456789."


def test_inside_the_cut_off_it_can_be_cancelled_not_moved_and_the_page_gives_the_branch_phone(
        client, api, app, session):
    catalogue.update_branch(session, "demo", phone="02 2345 6789")  # read in the branch's country (TW)
    add_appointment(app, "CUTQFF22", now_minute() + timedelta(minutes=20))
    page = client.get("/a/CUTQFF22-manage-token")
    html = page.data.decode()
    assert f"{CANCEL_ONLY} {CALL_DEMO}" in html
    assert 'id="cancel-button"' in html and 'id="reschedule-button"' not in html
    assert "were possible" not in html and "See, change" not in html
    assert page_data(page.data)["messages"]["cutoff_passed"].endswith(CALL_DEMO)
    shown = api.call("GET", "/appointments/CUTQFF22-manage-token").json
    assert (shown["can_reschedule"], shown["can_cancel"], shown["branch_phone"]) == (False, True, "+886223456789")
    slot = first_free_slot(api)
    moved = api.call("PATCH", "/appointments/CUTQFF22-manage-token", json={"start": slot["start"]})
    assert moved.status_code == 409 and moved.json["error"]["code"] == "cutoff_passed"
    assert "cancelled until it starts" in moved.json["error"]["message"]
    assert moved.json["error"]["message"].endswith("call the branch at +886223456789.")
    cancelled = api.call("DELETE", "/appointments/CUTQFF22-manage-token")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"


def test_without_a_branch_phone_the_page_sends_nobody_to_call(client, app, seeded):
    add_appointment(app, "CUTQFF23", now_minute() + timedelta(minutes=20))
    html = client.get("/a/CUTQFF23-manage-token").data.decode()
    note = re.search(r'id="change-note">(.*?)</p>', html).group(1)
    assert note == CANCEL_ONLY


def test_once_the_visit_has_started_it_can_neither_move_nor_be_cancelled_online(client, api, app, session):
    catalogue.update_branch(session, "demo", phone="+886 2 2345 6789")
    add_appointment(app, "CUTQFF24", now_minute() - timedelta(minutes=1))
    html = client.get("/a/CUTQFF24-manage-token").data.decode()
    assert "Your visit time has begun; it can no longer be changed or cancelled online." in html and CALL_DEMO in html
    assert 'id="cancel-button"' not in html and 'id="reschedule-button"' not in html
    refused = api.call("DELETE", "/appointments/CUTQFF24-manage-token")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "visit_started"
    assert "+886223456789" in refused.json["error"]["message"]


def test_the_mail_and_the_page_say_the_same_about_changes_and_the_link_opens_in_the_booking_language(
        client, api, app, session):
    # No notice and a cut-off of about a week: the first free time is inside the cut-off.
    catalogue.update_branch(session, "demo", phone="+886223456789",
                            booking_rules={"min_notice_minutes": 0, "change_cutoff_minutes": 10_000})
    slot = first_free_slot(api)
    assert slot["inside_cutoff"] is True
    data = booking_form(client)
    assert data["picker"]["inside_cutoff"] == "no online changes"
    made = post_booking(client, data, start=slot["start"], email="mei@example.com", phone="")
    assert made.status_code == 201, made.json
    with app.app_context():
        appointment = db.session.scalar(select(Appointment))
        confirmation = db.session.scalar(select(Notification).where(Notification.template == "booking_confirmed"))
        mail = notify.render(confirmation, appointment, datetime.now(timezone.utc)).body
        link = confirmation.payload["manage_url"]
    page = client.get(made.json["redirect"]).data.decode()
    assert f"{CANCEL_ONLY} {CALL_DEMO}" in mail and f"{CANCEL_ONLY} {CALL_DEMO}" in page
    assert "See or cancel your booking: " in mail and "See, change" not in mail

    zh = booking_form(client, "zh_Hant")
    later = next(s for d in api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
                 for s in d["slots"] if s["remaining"] > 0 and s["start"] != slot["start"])
    made_zh = post_booking(client, zh, key="zh-key", start=later["start"], email="lin@example.com", phone="",
                           name=OTHER_NAME)
    assert made_zh.status_code == 201, made_zh.json
    with app.app_context():
        link = db.session.scalars(select(Notification).where(Notification.template == "booking_confirmed")
                                  .order_by(Notification.id)).all()[-1].payload["manage_url"]
    assert link.endswith("&lang=zh_Hant") and "?proof=" in link
    # Opened in a browser that prefers English: the proof redirect keeps the booking's language.
    opened = client.get(link.removeprefix("http://kiosk.test"), headers={"Accept-Language": "en"})
    assert opened.status_code == 302 and "lang=zh_Hant" in opened.headers["Location"]
    html = client.get(opened.headers["Location"], headers={"Accept-Language": "en"}).data.decode()
    assert '<html lang="zh-Hant"' in html


def test_a_cancelled_booking_shows_its_state_and_no_code(client, api):
    mine = book_via_api(api)
    assert api.call("DELETE", f"/appointments/{mine['manage_token']}").status_code == 200
    html = client.get(f"/a/{mine['manage_token']}?cancelled=1").data.decode()
    assert "Your booking is cancelled" in html and "Book another visit" in html
    assert mine["check_in_code"] not in html and 'id="reschedule-button"' not in html


# ---- Kiosk check-in ----------------------------------------------------------------------------

def test_kiosk_start_screen_has_a_check_in_keyboard_with_exactly_the_code_letters(client, kiosk):  # noqa: F811
    html = client.get("/kiosk/demo").data.decode()
    assert "I have a booking" in html and 'id="checkin-screen"' in html
    keys = set(page_data(client.get("/kiosk/demo").data)["code_keys"])
    assert keys == set(CODE_ALPHABET) and not keys & set("01ILO")
    for key in CODE_ALPHABET:
        assert f'data-key="{key}"' in html


def test_kiosk_check_in_gives_a_ticket_then_the_same_ticket_again(client, kiosk, app):  # noqa: F811
    add_appointment(app, "HAVEBKG2", now_minute())
    first = client.post("/kiosk/demo/check-in", json={"code": "havebkg2"}, headers={"X-CSRFToken": kiosk})
    assert first.status_code == 201, first.json
    assert first.json["label"] == "B001" and first.json["service_name"] == "Loans and mortgages"
    assert first.json["repeat"] is False and first.json["track_url"].startswith("http://kiosk.test/t/")
    assert first.json["qr_svg"].startswith("<svg") and first.json["ahead"] == 0
    assert set(first.json["estimate"]) == {"state", "minutes", "low", "high", "opens_at"}
    again = client.post("/kiosk/demo/check-in", json={"code": "HAVE-BKG2"}, headers={"X-CSRFToken": kiosk})
    assert again.status_code == 200 and again.json["label"] == "B001" and again.json["repeat"] is True
    assert again.json["message"] == "You are already checked in: B001"
    assert "qr_svg" not in again.json and "track_url" not in again.json


def test_kiosk_check_in_needs_the_device_session_and_csrf(client, kiosk, app):  # noqa: F811
    add_appointment(app, "HAVEBKG3", now_minute())
    assert client.post("/kiosk/demo/check-in", json={"code": "HAVEBKG3"}).json["error"]["code"] == "csrf_failed"
    assert client.post("/kiosk/demo/check-in", data="x", content_type="application/json",
                       headers={"X-CSRFToken": kiosk}).status_code == 400
    stranger = app.test_client()
    assert stranger.post("/kiosk/demo/check-in", json={"code": "HAVEBKG3"}).status_code in (400, 401)


@pytest.mark.parametrize("case, status, code, walk_in", [
    ("unknown", 404, "unknown_code", False),
    ("other_branch", 409, "other_branch", False),
    ("other_day", 409, "other_day", False),
    ("too_early", 409, "too_early", False),
    ("too_late", 409, "too_late", True),
    ("cancelled", 409, "cancelled", True),
    ("no_show", 409, "no_show", True),
    ("used", 409, "already_checked_in", False),
])
def test_kiosk_check_in_refusals_each_have_their_own_message(client, kiosk, app, north, case, status, code, walk_in):  # noqa: F811
    now = now_minute()
    today = taipei_today()
    rows = {
        "other_branch": dict(start=now, branch="north", service="A"),
        "other_day": dict(start=now + timedelta(days=1), local_date=today + timedelta(days=1)),
        "too_early": dict(start=now + timedelta(hours=2), local_date=today),
        "too_late": dict(start=now - timedelta(minutes=30), local_date=today),
        "cancelled": dict(start=now, status="cancelled"),
        "no_show": dict(start=now - timedelta(minutes=30), local_date=today, status="no_show"),
        "used": dict(start=now, status="done"),
    }
    if case in rows:
        add_appointment(app, "REFUSE22", **rows[case])
    refused = client.post("/kiosk/demo/check-in", json={"code": "REFUSE22"}, headers={"X-CSRFToken": kiosk})
    assert refused.status_code == status and refused.json["error"]["code"] == code
    message = refused.json["error"]["message"]
    expected = {
        "unknown": "We could not find a booking with this code",
        "other_branch": "This booking is for another branch: North Branch.",
        "other_day": "not today",
        "too_early": "Check-in for your",
        "too_late": "check-in for this booking closed 10 minutes after its start time",
        "cancelled": "This booking was cancelled.",
        "no_show": "This booking was missed",
        "used": "This booking was already used",
    }[case]
    assert expected in message
    if walk_in:
        assert refused.json["walk_in"] == {"service": "B", "service_name": "Loans and mortgages"}
        ticket = client.post("/kiosk/demo/tickets", json={"service": "B"}, headers={"X-CSRFToken": kiosk})
        assert ticket.status_code == 201 and ticket.json["label"] == "B001"  # the one-tap walk-in
    else:
        assert "walk_in" not in refused.json


def test_kiosk_refusals_speak_the_kiosk_language(client, kiosk, app):  # noqa: F811
    refused = client.post("/kiosk/demo/check-in?lang=zh_Hant", json={"code": "ZZZZZZZZ"}, headers={"X-CSRFToken": kiosk})
    assert refused.json["error"]["code"] == "unknown_code" and "預約" in refused.json["error"]["message"]


# ---- Staff console and the branch list ---------------------------------------------------------

def test_staff_console_lists_bookings_and_books_on_behalf(client, api, app):
    add_appointment(app, "HAVEBKG4", now_minute())
    counter_id = api.counter_id("Counter 2")
    login(client)
    page = client.get(f"/staff/counters/{counter_id}")
    html = page.data.decode()
    assert "Today&#39;s bookings" in html or "Today's bookings" in html
    assert 'id="book-dialog"' in html and "Book for a customer" in html
    data = page_data(page.data)
    assert data["appointments_url"] == "/api/v1/branches/demo/appointments"
    today = client.get(data["appointments_url"])
    assert today.status_code == 200 and today.json[0]["name"] == NAME and today.json[0]["status"] == "booked"
    # A customer paused for missed visits can still be booked by staff (the API skips the checks).
    with app.app_context():
        db.session.add(Customer(phone="+886955555555", name="Blocked", language="en", tier="standard", strikes=3,
                                booking_blocked_until=datetime.now(timezone.utc) + timedelta(days=10)))
        db.session.commit()
    slot = first_free_slot(api)
    body = {"service": "B", "start": slot["start"], "name": "Blocked", "phone": "+886955555555"}
    assert client.post(data["book_url"], json=body).status_code == 400  # no CSRF header: refused
    made = client.post(data["book_url"], json=body, headers={"X-CSRFToken": data["csrf_token"], "Idempotency-Key": "dlg-1"})
    assert made.status_code == 201, made.json
    with app.app_context():
        assert db.session.get(Appointment, made.json["id"]).booked_by_staff_id is not None


def test_branch_list_links_booking_and_the_lobby_display(client, seeded):
    html = client.get("/").data.decode()
    assert "Demo Branch" in html
    assert 'href="/b/demo?lang=en"' in html and 'href="/display/demo?lang=en"' in html
    assert "Book a visit" in html and "Lobby display" in html


def test_a_branch_without_bookable_services_says_so(client, session, kiosk):  # noqa: F811
    for service in session.scalars(select(Service)).all():
        catalogue.update_service(session, service.id, booking_enabled=False)
    html = client.get("/b/demo").data.decode()
    assert "does not take online bookings" in html and 'id="booking-form"' not in html
    assert 'href="/b/demo' not in client.get("/").data.decode()  # no "Book a visit" link either
    kiosk_page = client.get("/kiosk/demo").data.decode()
    assert "Accounts and deposits" in kiosk_page and "I have a booking" not in kiosk_page


def test_kiosk_check_in_codes_are_rate_limited_per_device(limited_app):
    from helpers import meta_csrf

    app, token = limited_app(LOOKUP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    client.get(f"/kiosk/demo?device={token}")
    csrf = meta_csrf(client.get("/kiosk/demo").data)
    codes = [client.post("/kiosk/demo/check-in", json={"code": f"GUESS{n:03d}"}, headers={"X-CSRFToken": csrf})
             for n in range(4)]
    assert [r.status_code for r in codes] == [404, 404, 404, 429]
