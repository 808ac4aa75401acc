"""The remaining pages a person uses, in a real browser (Playwright + Debian Chromium) on `queue-app run`:
a phone reschedules and cancels its booking (in Simplified Chinese), a manager pauses a counter
(the staff console can no longer call) and pairs a kiosk, and the lobby display of a
Traditional-Chinese branch announces a call in words on screen. Each keeps screenshots.
"""
import re
from datetime import timedelta

import requests
from browser import STAFF, WAIT_MS, open_page, save_screenshot
from helpers import AXE, PHONE, add_appointment, axe_violations, now_minute, save_full_page, sign_in
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core.extensions import db


def test_phone_reschedules_then_cancels_its_booking_in_simplified_chinese(server, chromium, app, tmp_path):  # noqa: F811
    add_appointment(app, "MVC4NC2L", now_minute() + timedelta(days=2))
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{server.base}/a/MVC4NC2L-manage-token?lang=zh_Hans")
    expect(phone.locator("html")).to_have_attribute("lang", "zh-Hans")
    when = phone.locator("#visit-when")
    before = when.text_content()
    assert "年" in before and "星期" in before  # the date in the locale's own format
    phone.get_by_role("button", name="更改时段").click()
    expect(phone.get_by_role("heading", name="选择新的时段")).to_be_visible()
    # The picker opens on the first day with a free time, often today, where late in the day few
    # times are left: the last day offered is a whole day ahead, whatever the hour of the run.
    phone.locator("#reschedule button.day-chip:not([disabled])").last.click()
    slot = phone.locator("#reschedule button.slot:not([disabled])").nth(1)
    slot.click()
    expect(phone.locator("#reschedule-confirm")).to_be_visible()
    save_full_page(phone, tmp_path, "manage-booking-reschedule-zh-hans.png")
    phone.locator("#reschedule-submit").click()
    expect(when).not_to_have_text(before)
    expect(phone.locator("#reschedule")).to_be_hidden()
    moved_to = when.text_content()
    with app.app_context():
        booking = db.session.scalar(select(Appointment).where(Appointment.check_in_code == "MVC4NC2L"))
        assert booking.sequence == 1 and booking.status == "booked"

    phone.get_by_role("button", name="取消预约").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    save_full_page(phone, tmp_path, "manage-booking-cancel-dialog-zh-hans.png")
    dialog.get_by_role("button", name="是的，取消").click()
    expect(when).to_have_class(re.compile(r"\bstruck\b"))
    expect(when).to_have_text(moved_to)
    expect(phone.get_by_role("button", name="更改时段")).to_be_hidden()
    save_full_page(phone, tmp_path, "manage-booking-cancelled-zh-hans.png")
    with app.app_context():
        booking = db.session.scalar(select(Appointment).where(Appointment.check_in_code == "MVC4NC2L"))
        assert booking.status == "cancelled"
    assert errors == []


def test_manager_pauses_a_counter_the_console_follows_and_pairs_a_kiosk(server, chromium, app, api, seeded,  # noqa: F811
                                                                          tmp_path):
    api.issue("B")  # someone waits for Counter 2 (A and B)
    errors: list[str] = []
    with app.app_context():
        counter_id = db.session.scalar(select(Counter.id).where(Counter.name == "Counter 2"))
    staff = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(staff, server.base, STAFF, seeded["password"])
    staff.get_by_role("link", name=re.compile("Counter 2")).click()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(staff.get_by_role("button", name="Call next")).to_be_enabled()

    manager = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(manager, server.base, "manager@demo.test", seeded["password"])
    manager.goto(f"{server.base}/manage/?lang=zh_Hant")
    expect(manager.get_by_role("heading", level=1)).not_to_contain_text("Branches")
    save_screenshot(manager, tmp_path, "manage-index-zh-hant.png")
    manager.goto(f"{server.base}/manage/")
    manager.locator("main").get_by_role("link", name="Counters", exact=True).first.click()
    expect(manager).to_have_url(f"{server.base}/manage/branches/demo/counters")
    manager.locator(f"#counter-{counter_id}-state").select_option("paused")
    manager.locator(f"#counter-{counter_id}-submit").click()
    expect(manager.locator(".flash")).to_contain_text("Counter 2 saved.")
    row = manager.locator("table.grid tr", has_text="Counter 2")
    expect(row).to_contain_text("Paused")
    save_screenshot(manager, tmp_path, "manage-counters.png")
    # The console of the paused counter cannot call. (A counter's state change is not pushed yet:
    # only ticket events are published, so the console shows it when it next loads.)
    staff.reload()
    expect(staff.locator("#counter-state")).to_have_text("Paused")
    expect(staff.get_by_role("button", name="Call next")).to_be_disabled()
    save_screenshot(staff, tmp_path, "staff-console-paused.png")

    manager.goto(f"{server.base}/manage/branches/demo/kiosks")
    manager.get_by_label("Device name").fill("Lobby right")
    manager.get_by_role("button", name=re.compile("pairing code", re.I)).click()
    expect(manager.locator("#pairing-code")).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{2}$"))
    save_screenshot(manager, tmp_path, "manage-kiosks-pairing-code.png")
    assert errors == []


def test_display_of_a_chinese_branch_announces_a_call_in_words(server, chromium, app, api, seeded, tmp_path):  # noqa: F811
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.slug == "demo"))
        branch.language = "zh_Hant"
        db.session.commit()
    errors: list[str] = []
    display = open_page(chromium, errors, viewport={"width": 1920, "height": 1080})
    display.goto(f"{server.base}/display/demo")
    expect(display.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(display.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    # Through the running server (the test client's changes would not reach its live pushes).
    api_base = f"{server.base}/api/v1"
    ticket = requests.post(f"{api_base}/branches/demo/tickets", json={"service": "A"},
                           headers={"Authorization": f"Bearer {seeded['kiosk_token']}"}, timeout=10).json()
    token = requests.post(f"{api_base}/auth/token", json={"email": STAFF, "password": seeded["password"]},
                          timeout=10).json()["token"]
    called = requests.post(f"{api_base}/counters/{api.counter_id('Counter 1')}/call-next",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert called.status_code == 200 and called.json()["label"] == ticket["label"]
    # The spoken announcement is on screen too, in the branch's language, for those who cannot hear it.
    announcement = display.locator("#announce-text")
    expect(announcement).to_contain_text(f"請 {ticket['label']} 號到 1 號櫃檯")  # the counter's zh_Hant name
    expect(display.locator('.board-row[data-counter="Counter 1"] .board-ticket')).to_have_text(ticket["label"])
    # Counter and service names in the display's language (Counter.names, Service.names), not the default.
    expect(display.locator('.board-row[data-counter="Counter 1"] .board-counter')).to_have_text("1 號櫃檯")
    expect(display.locator(".waiting-name").first).to_have_text("帳戶與存款")
    expect(display.locator(".recent-counter").first).to_have_text("1 號櫃檯")
    save_screenshot(display, tmp_path, "display-zh-hant-announcement.png")
    assert errors == []


def test_phone_follows_its_ticket_with_names_in_simplified_chinese(server, chromium, seeded, api):  # noqa: F811
    api_base = f"{server.base}/api/v1"
    ticket = requests.post(f"{api_base}/branches/demo/tickets", json={"service": "A"},
                           headers={"Authorization": f"Bearer {seeded['kiosk_token']}"}, timeout=10).json()
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE)
    phone.goto(f"{server.base}/t/{ticket['token']}?lang=zh_Hans")
    expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(phone.locator("#tr-service")).to_have_text("账户与存款")
    token = requests.post(f"{api_base}/auth/token", json={"email": STAFF, "password": seeded["password"]},
                          timeout=10).json()["token"]
    requests.post(f"{api_base}/counters/{api.counter_id('Counter 1')}/call-next",
                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # The push carries every language's name; the page shows its own (live.js localName).
    expect(phone.locator("#tr-counter")).to_have_text("1 号柜台", timeout=WAIT_MS)
    expect(phone.locator("#tr-service")).to_have_text("账户与存款")
    assert errors == []


LONG_NAME = ("Mortgages" + "AndRefinancing" * 14)[:193]  # no space to break at: the hardest case


def page_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing sticks out)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def sticking_out(page) -> list[str]:
    """The innermost elements whose right edge passes the viewport's, to say what widened the page."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                     && ![...e.children].some(c => c.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').trim().slice(0, 30))""")


def test_a_193_character_name_never_widens_a_page_and_the_stars_sit_on_one_line(server, chromium, app, api,  # noqa: F811
                                                                                  seeded, tmp_path):
    assert len(LONG_NAME) == 193
    with app.app_context():
        db.session.scalar(select(Service).where(Service.code == "A")).name = LONG_NAME
        db.session.scalar(select(Counter).where(Counter.name == "Counter 1")).name = LONG_NAME[::-1]
        db.session.commit()
    ticket = api.issue("A")
    counter_id = api.counter_id(LONG_NAME[::-1])
    errors: list[str] = []

    admin = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(admin, server.base, "admin@demo.test", seeded["password"])
    for path, shot in (("/manage/branches/demo/services", "long-name-manage-services.png"),
                       ("/manage/branches/demo/counters", "long-name-manage-counters.png"),
                       ("/manage/branches/demo/dashboard", None), ("/manage/branches/demo/customers", "manage-customers.png"),
                       ("/staff", "long-name-staff-counters.png"), (f"/staff/counters/{counter_id}", None),
                       ("/manage/audit", "audit-log.png")):
        admin.goto(server.base + path)
        assert page_overflow(admin) <= 0, (path, sticking_out(admin))
        if path == "/manage/audit":
            assert axe_violations(admin, AXE.read_text(encoding="utf-8")) == []
        if shot:
            save_screenshot(admin, tmp_path, shot)
    # The name is cut with an ellipsis in the table, and the whole of it is one hover away.
    admin.goto(f"{server.base}/manage/branches/demo/services")
    cell = admin.locator("table.grid .clip", has_text=LONG_NAME[:20])
    expect(cell).to_have_attribute("title", LONG_NAME)
    assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, not wrapped or stretched

    phone = open_page(chromium, errors, **PHONE)
    for path in ("/b/demo", f"/t/{ticket['token']}"):
        phone.goto(server.base + path)
        assert page_overflow(phone) <= 0, (path, sticking_out(phone))
    save_full_page(phone, tmp_path, "long-name-tracking-phone.png")

    api.call("POST", f"/counters/{counter_id}/call-next", STAFF)
    api.call("POST", f"/tickets/{ticket['id']}/finish", STAFF)
    phone.goto(f"{server.base}/t/{ticket['token']}/feedback")
    stars = phone.locator(".star-rating label")
    expect(stars).to_have_count(5)
    tops = {round(box["y"]) for box in (stars.nth(n).bounding_box() for n in range(5))}
    assert len(tops) == 1, tops  # one line, at the narrowest phone width
    assert page_overflow(phone) <= 0, sticking_out(phone)
    # Keyboard: Tab to the stars, arrows move the choice, the 0-10 row is a row of buttons.
    phone.locator("#rating-1").focus()
    phone.keyboard.press("ArrowRight")
    phone.keyboard.press("ArrowRight")
    expect(phone.locator("#rating-3")).to_be_checked()
    phone.get_by_text("9", exact=True).click()
    expect(phone.locator("#nps-9")).to_be_checked()
    save_full_page(phone, tmp_path, "feedback-form-phone.png")
    assert axe_violations(phone, AXE.read_text(encoding="utf-8")) == []
    phone.get_by_role("button", name="Send").click()
    expect(phone.locator(".track-over")).to_contain_text("Thank you")
    assert errors == []
