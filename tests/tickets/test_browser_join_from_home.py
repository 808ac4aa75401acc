"""Joining the queue from home, end to end in a real browser (Playwright + Debian Chromium) against
`queue-app run` on SQLite, with SMS through the app's `http` driver to a fake gateway on loopback.

(a) A phone joins from /j/demo, proves its number with the code read from the gateway's recorded
    request, gets "Time to set off" through the gateway (once), says "I'm here" by opening the
    kiosk's daily QR address, and is called by a counter.
(b) A remote ticket called before its holder arrived is held once: the counter gets the next
    ticket, the phone's page says so, and the holder gets the message.

The timed jobs run in the test process (the server runs none), on the same database file.
"""
import re

import pytest
from browser import STAFF, WAIT_MS, open_page, save_screenshot
from helpers import PHONE, SmsGatewayFake, make_app, sign_in
from playwright.sync_api import expect

from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.jobs import scheduler

NUMBER = "+886912345678"


@pytest.fixture
def gateway():
    made = SmsGatewayFake()
    yield made
    made.close()


@pytest.fixture
def jobs(db_path, gateway, server):
    """The app in the test process, on the server's database, sending SMS to the fake gateway."""
    app = make_app(db_path, QUEUE_APP_MAIL_DRIVER="console", **gateway.config)
    with app.app_context():
        catalogue.update_branch(db.session, "demo", allow_remote_tickets=True)
    yield app
    with app.app_context():
        db.engine.dispose()


def join_from_phone(chromium, errors, base, gateway, jobs, number, travel, shots=None):
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{base}/j/demo")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Join the queue")
    phone.locator("label.choice", has_text="Cards and enquiries").click()
    phone.get_by_label("Mobile number").fill(number)
    phone.get_by_role("button", name="Send me a code").click()
    expect(phone.locator("#code-sent")).to_have_text("We sent a 6-digit code by SMS. Type it below.")
    scheduler.send_outbox(jobs)  # the code goes out through the gateway
    code = gateway.last_code(number)
    phone.get_by_label("The 6-digit code").fill(code)
    phone.get_by_label("Your trip to the branch takes (minutes)").fill(str(travel))
    if shots is not None:
        save_screenshot(phone, shots, "join-page-phone.png")
    phone.get_by_role("button", name="Join the queue").click()
    expect(phone).to_have_url(re.compile(rf"{re.escape(base)}/t/"))
    expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    return phone


def test_phone_joins_proves_its_code_sets_off_arrives_by_qr_and_is_called(server, chromium, seeded, gateway, jobs,
                                                                          tmp_path):
    errors: list[str] = []
    base = server.base
    phone = join_from_phone(chromium, errors, base, gateway, jobs, NUMBER, 30, tmp_path)
    expect(phone.locator("#tr-label")).to_have_text("C001")
    # Counters 1 and 3 serve C and are free: the turn is near, so leave now.
    expect(phone.locator("#tr-leave")).to_have_text(re.compile(r"^(Time to set off now|Leave by \d\d:\d\d)$"))
    expect(phone.get_by_role("button", name="I'm here")).to_be_visible()
    save_screenshot(phone, tmp_path, "join-tracking-phone.png")

    scheduler.alert_set_off(jobs)
    scheduler.alert_set_off(jobs)  # a second run sends nothing more
    scheduler.send_outbox(jobs)
    set_off = [text for text in gateway.texts_to(NUMBER) if text.startswith("Time to set off")]
    assert len(set_off) == 1 and "C001 at Demo Branch" in set_off[0]

    # At the branch: the kiosk shows today's "I'm here" QR; the phone opens its address.
    kiosk = open_page(chromium, errors, viewport={"width": 1080, "height": 1920}, has_touch=True)
    kiosk.goto(f"{base}/kiosk/demo?device={seeded['kiosk_token']}")
    expect(kiosk.locator("#here-qr svg")).to_be_visible()
    here_url = kiosk.locator("#here-qr").get_attribute("data-here-url")
    assert re.fullmatch(rf"{re.escape(base)}/here/demo/[A-Z2-9]{{6}}", here_url)
    track_url = phone.url
    phone.goto(here_url)
    expect(phone.locator("html")).to_have_attribute("data-arrived", "yes")
    expect(phone.locator("#here-message")).to_contain_text("C001 is marked as here")
    save_screenshot(phone, tmp_path, "join-here-phone.png")
    phone.goto(track_url)
    expect(phone.locator("#tr-arrived")).to_be_visible()
    expect(phone.get_by_role("button", name="I'm here")).to_be_hidden()

    staff = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(staff, base, STAFF, seeded["password"])
    staff.get_by_role("link", name=re.compile("Counter 1")).click()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(staff.locator("#remote-list")).to_have_text("C001 · here")
    staff.get_by_role("button", name="Call next").click()
    expect(staff.locator("#current-label")).to_have_text("C001")
    expect(staff.locator("#current-times")).to_contain_text("Joined from home, here since")
    expect(phone.locator('[data-when="called"]')).to_be_visible()
    expect(phone.locator("#tr-counter")).to_have_text("Counter 1")
    assert errors == []


def test_a_remote_ticket_called_before_arriving_is_held_once(server, chromium, seeded, gateway, jobs, tmp_path):
    errors: list[str] = []
    base = server.base
    phone = join_from_phone(chromium, errors, base, gateway, jobs, NUMBER, 20)
    expect(phone.locator("#tr-label")).to_have_text("C001")
    kiosk = open_page(chromium, errors, viewport={"width": 1080, "height": 1920}, has_touch=True)
    kiosk.goto(f"{base}/kiosk/demo?device={seeded['kiosk_token']}")
    kiosk.locator('.service-tile[data-service="C"]').click()
    expect(kiosk.locator("#t-label")).to_have_text("C002")

    staff = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(staff, base, STAFF, seeded["password"])
    staff.get_by_role("link", name=re.compile("Counter 1")).click()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(staff.locator("#remote-list")).to_have_text("C001 · not here yet")
    save_screenshot(staff, tmp_path, "join-staff-console.png")
    staff.get_by_role("button", name="Call next").click()
    expect(staff.locator("#current-label")).to_have_text("C002")  # C001 is not here: held, not called
    expect(phone.locator("#tr-held")).to_be_visible()
    expect(phone.locator('[data-when="waiting"]')).to_be_visible()
    save_screenshot(phone, tmp_path, "join-held-phone.png")
    scheduler.send_outbox(jobs)
    held = [text for text in gateway.texts_to(NUMBER) if "not here yet" in text]
    assert len(held) == 1 and "C001 at Demo Branch" in held[0]

    # Served and finished; the next call reaches C001 again, still not here: a no-show.
    staff.get_by_role("button", name="Finish").click()
    expect(staff.locator("#current-empty")).to_be_visible()
    staff.get_by_role("button", name="Call next").click()
    expect(phone.locator('[data-when="no_show"]')).to_be_visible()
    assert errors == []
