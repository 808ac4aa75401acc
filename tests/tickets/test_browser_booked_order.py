"""A booked visit is served at its time, in a real browser against the real server (wall clock).

50 walk-ins wait; a booking starting 15 s from now is checked in early. Before its
start the counter's "Call next" takes a walk-in; from its start on, the booking, within one
service time of the start, and the holder's phone shows the call without a reload.
"""
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from browser import WAIT_MS, open_counter_console, open_page, save_screenshot
from helpers import add_appointment
from playwright.sync_api import expect
from sqlalchemy import func, select

from queue_app.booking import operations as booking
from queue_app.catalogue.models import Service
from queue_app.core.extensions import db
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket

TAIPEI = ZoneInfo("Asia/Taipei")  # the seeded demo branch's zone
SETUP_SECONDS = 15  # what follows takes 2-3 s on a quiet machine


def wait_past_local_midnight_if_near() -> None:
    """The walk-ins, the booking and the calls must share one branch-local day (numbers and check-in
    are per local day): within 5 minutes of the branch's midnight, wait until it has passed."""
    now = datetime.now(TAIPEI)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=5):
        time.sleep((midnight - now).total_seconds() + 1)


@pytest.mark.slow
def test_a_booking_checked_in_early_is_called_at_its_start_ahead_of_50_walk_ins(server, chromium, app, seeded,  # noqa: F811
                                                                                tmp_path):
    errors: list[str] = []
    wait_past_local_midnight_if_near()
    # The slow part first (Chromium, the staff's sign-in), so the start can be near: the test waits
    # for a real start time on the wall clock.
    staff = open_counter_console(chromium, errors, server.base, seeded["password"], "Counter 1")  # serves A and C
    call_next = staff.get_by_role("button", name="Call next")
    phone = open_page(chromium, errors, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)

    # A start SETUP_SECONDS from now (booked directly: the grid and notice rules are not what this
    # test is about); what is left of the set-up takes a few seconds.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=SETUP_SECONDS)
    add_appointment(app, "BOOKED23", start, service="A")
    with app.app_context():
        for _ in range(50):
            queueing.issue_ticket(db.session, "demo", "A", issued_by="staff")
        checked_in = booking.check_in(db.session, "demo", "BOOKED23")
        booked_label = checked_in.ticket.label
        visit = timedelta(minutes=db.session.scalar(select(Service.expected_minutes).where(Service.code == "A")))
        local_start = start.astimezone(checked_in.ticket.branch.zone).strftime("%H:%M")

    # Tickets issued in this process reach the server's pages only with a load.
    staff.reload()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    phone.goto(f"{server.base}/t/{checked_in.tracking_token}")
    expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(phone.locator("#tr-booked")).to_have_text(f"Booked visit {local_start}")
    expect(phone.locator("#tr-ahead")).to_have_text("0")  # at its start it goes before every walk-in

    # Before the start: the walk-ins' line.
    assert datetime.now(UTC) < start, "the set-up took too long for this start"
    call_next.click()
    expect(staff.locator("#current-label")).to_have_text("A001")
    expect(phone.locator('[data-when="waiting"]')).to_be_visible()
    staff.keyboard.press("f")
    expect(staff.locator("#current-empty")).to_be_visible()

    # From the start on: the booking, ahead of the 49 walk-ins still waiting.
    phone.evaluate("window.__noReload = true")
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.5)
    expect(call_next).to_be_enabled()
    call_next.click()
    expect(staff.locator("#current-label")).to_have_text(booked_label)
    expect(phone.locator('[data-when="called"]')).to_be_visible()
    expect(phone.locator("#tr-counter")).to_have_text("Counter 1")
    expect(phone.locator("#tr-booked")).to_have_text(f"Booked visit {local_start}")  # kept by the push
    assert phone.evaluate("window.__noReload") is True
    with app.app_context():
        called_at = db.session.scalar(select(Ticket.called_at).where(Ticket.label == booked_label))
        waiting = db.session.scalar(select(func.count(Ticket.id)).where(Ticket.status == "waiting"))
    assert start <= called_at.replace(tzinfo=called_at.tzinfo or UTC) < start + visit
    assert waiting == 49
    save_screenshot(phone, tmp_path, "tracking-phone-booked-called.png")
    assert errors == []
