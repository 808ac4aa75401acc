"""Booking end to end in a real browser (Playwright + Debian Chromium), on `queue-app run`.

A phone books a visit through /b/demo by tapping a slot button and lands on its booking page
with the check-in code; a kiosk checks a booking in by its code on the on-screen keyboard, and
the staff console's list of today's bookings shows the ticket without a reload; staff book for a
customer through the dialog. Screenshots go to tmp_path and /work/screens/.
"""
import re
from datetime import timedelta

from browser import open_counter_console, open_page, save_screenshot
from helpers import PHONE, add_appointment, now_minute, save_full_page, taipei_today
from playwright.sync_api import expect
from sqlalchemy import func, select

from queue_app.booking.models import Appointment
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db

# The accessible name of a free slot: weekday, date, time and the branch's zone, nothing more.
SLOT_NAME = re.compile(r"^[A-Z][a-z]+day, \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d \(Asia\/Taipei\)$")


def test_phone_books_a_visit_by_tapping_a_slot_and_sees_its_code(server, chromium, app, tmp_path):  # noqa: F811
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{server.base}/b/demo")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Book a visit")
    phone.get_by_role("radio", name=re.compile("Loans and mortgages")).check()
    slot = phone.get_by_role("button", name=SLOT_NAME).first
    expect(slot).to_be_visible()
    slot_name = slot.get_attribute("aria-label")
    slot.click()
    expect(slot).to_have_attribute("aria-pressed", "true")
    expect(phone.locator("#summary")).to_contain_text(slot_name)
    phone.get_by_label("Your name").fill("Chen Mei-Ling")
    phone.get_by_label("Mobile number").fill("0912 345 678")
    save_full_page(phone, tmp_path, "booking-phone.png")

    phone.get_by_role("button", name="Book this visit").dblclick()  # a double tap books once
    expect(phone).to_have_url(re.compile(r"/a/[^/?]+\?new=1"))
    expect(phone.get_by_text("Your visit is booked")).to_be_visible()
    code = phone.locator("#checkin-code")
    expect(code).to_have_text(re.compile(r"^[A-HJKMNP-Z2-9]{4}[A-HJKMNP-Z2-9]{4}$"))
    expect(phone.locator(".checkin-qr svg")).to_be_visible()
    expect(phone.locator("#visit-when")).to_have_text(slot_name)
    expect(phone.get_by_role("link", name="Add to calendar")).to_be_visible()
    save_full_page(phone, tmp_path, "booking-confirmation.png")
    with app.app_context():
        assert db.session.scalar(select(func.count(Appointment.id))) == 1
        assert db.session.scalar(select(Appointment.check_in_code)) == code.text_content()

    phone.get_by_role("link", name="繁體中文").click()
    expect(phone.locator(".checkin-title")).to_have_text("您的報到碼")
    save_full_page(phone, tmp_path, "booking-confirmation-zh-hant.png")
    assert errors == []


def test_kiosk_checks_in_a_booking_typed_on_its_keyboard(server, chromium, app, seeded, tmp_path):  # noqa: F811
    errors: list[str] = []
    add_appointment(app, "KSKCHK23", now_minute())
    add_appointment(app, "TARDY29B", now_minute() - timedelta(minutes=30), local_date=taipei_today(), name="Late Lee")

    staff = open_counter_console(chromium, errors, server.base, seeded["password"], "Counter 2")  # serves A and B
    booked_row = staff.locator("#bookings-body tr", has_text="Chen Mei-Ling")
    expect(booked_row).to_contain_text("Booked")

    kiosk = open_page(chromium, errors, viewport={"width": 1080, "height": 1920}, has_touch=True)
    kiosk.goto(f"{server.base}/kiosk/demo?device={seeded['kiosk_token']}")
    kiosk.get_by_role("button", name=re.compile("I have a booking")).click()
    expect(kiosk.get_by_role("heading", level=1)).to_have_text("Check in for your booking")
    check_in = kiosk.get_by_role("button", name="Check in", exact=True)
    for key in "KSKCHK2":
        kiosk.get_by_role("button", name=key, exact=True).click()
    expect(check_in).to_be_disabled()
    kiosk.get_by_role("button", name="3", exact=True).click()
    expect(kiosk.locator(".code-box").nth(7)).to_have_text("3")
    save_screenshot(kiosk, tmp_path, "kiosk-checkin.png")
    check_in.click()
    expect(kiosk.locator("#t-label")).to_have_text("B001")
    expect(kiosk.locator("#t-note")).to_contain_text("You are checked in for your")
    expect(kiosk.locator("#t-qr svg")).to_be_visible()
    save_screenshot(kiosk, tmp_path, "kiosk-checkin-ticket.png")
    # The console's list follows the check-in by itself (queue push), without a reload.
    expect(booked_row).to_contain_text("Checked in")
    expect(booked_row.locator(".ticket-label")).to_have_text("B001")

    # The same code again, typed on a real keyboard: the same number, no new QR code.
    kiosk.locator("#done-button").click()
    kiosk.get_by_role("button", name=re.compile("I have a booking")).click()
    kiosk.keyboard.type("kskchk23")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#t-note")).to_have_text("You are already checked in: B001")
    expect(kiosk.locator("#t-qr")).to_be_hidden()

    # Too late: the refusal says so and offers a walk-in ticket for the same service, in one tap.
    kiosk.locator("#done-button").click()
    kiosk.get_by_role("button", name=re.compile("I have a booking")).click()
    kiosk.keyboard.type("TARDY29B")
    check_in.click()
    expect(kiosk.locator("#checkin-message")).to_contain_text("check-in for this booking closed")
    walk_in = kiosk.get_by_role("button", name=re.compile("Take a walk-in ticket instead"))
    expect(walk_in).to_contain_text("Loans and mortgages")
    save_screenshot(kiosk, tmp_path, "kiosk-checkin-too-late.png")
    walk_in.click()
    expect(kiosk.locator("#t-label")).to_have_text("B002")
    expect(kiosk.locator("#t-note")).to_be_hidden()

    # Staff book for a customer through the dialog.
    staff.get_by_role("button", name="Book for a customer").click()
    dialog = staff.get_by_role("dialog")
    dialog.get_by_label("Service").select_option("B")
    dialog.get_by_role("button", name=SLOT_NAME).first.click()
    dialog.get_by_label("Customer's name").fill("Wang Da-Wei")
    dialog.get_by_label("Mobile number").fill("+886911222333")
    dialog.get_by_role("button", name="Book", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(staff.locator("#bookings-message")).to_contain_text("Booked Wang Da-Wei")
    save_screenshot(staff, tmp_path, "staff-bookings.png")
    with app.app_context():
        made = db.session.scalar(select(Appointment).where(Appointment.name == "Wang Da-Wei"))
        assert made is not None and made.booked_by_staff_id is not None
    assert errors == []


def test_the_form_marks_every_wrong_field_at_once_and_times_inside_the_cut_off(server, chromium, app,  # noqa: F811
                                                                                tmp_path):
    with app.app_context():
        # No notice and a cut-off of about a week: the first free times are inside the cut-off.
        catalogue.update_branch(db.session, "demo", booking_rules={"min_notice_minutes": 0,
                                                                   "change_cutoff_minutes": 10_000})
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{server.base}/b/demo")
    phone.get_by_role("radio", name=re.compile("Loans and mortgages")).check()
    inside = re.compile(r"can be cancelled until it starts, but not changed online$")
    slot = phone.get_by_role("button", name=inside).first
    expect(slot).to_contain_text("no online changes")
    slot.click()
    expect(phone.locator("#summary-cutoff")).to_be_visible()
    expect(phone.locator("#summary-cutoff")).to_contain_text("changes are no longer possible online")
    phone.get_by_label("Mobile number").fill("12")
    phone.get_by_label("E-mail").fill("nope")
    phone.get_by_role("button", name="Book this visit").click()
    expect(phone.locator("#name-error")).to_have_text("Please enter your name.")
    expect(phone.locator("#phone-error")).to_have_text("This does not look like a phone number.")
    expect(phone.locator("#email-error")).to_have_text("This does not look like an e-mail address.")
    save_full_page(phone, tmp_path, "booking-inside-cut-off-and-field-errors.png")
    assert errors == []


def test_inside_the_cut_off_the_booking_page_cancels_but_does_not_move(server, chromium, app):  # noqa: F811
    add_appointment(app, "CUTQFF25", now_minute() + timedelta(minutes=20))
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{server.base}/a/CUTQFF25-manage-token")
    expect(phone.locator("#change-note")).to_have_text(
        "You can cancel until the visit starts; changes are no longer possible online.")
    expect(phone.get_by_role("button", name="Reschedule")).to_have_count(0)
    phone.get_by_role("button", name="Cancel booking").click()
    phone.get_by_role("button", name="Yes, cancel").click()
    expect(phone.get_by_text("Your booking is cancelled")).to_be_visible()
    assert errors == []
