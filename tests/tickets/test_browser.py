"""End to end in a real browser (Playwright + Debian Chromium, never a downloaded browser).

The real server runs as `queue-app run` in a subprocess on a migrated and seeded SQLite file.
A kiosk issues a ticket, staff call it from the console, and, without any reload, the lobby
display shows it at the counter and the holder's phone shows where to go. Then the server
stops and comes back: the kiosk shows its out-of-order screen and recovers, the display shows
that it is reconnecting and resynchronises.
"""
import re

from browser import STAFF, WAIT_MS, open_page, save_screenshot
from playwright.sync_api import expect


def test_kiosk_ticket_called_by_staff_shows_on_display_and_phone_without_reload(server, chromium, seeded, tmp_path):
    browser = chromium
    errors: list[str] = []
    base = server.base

    display = open_page(browser, errors, viewport={"width": 1920, "height": 1080})
    display.goto(f"{base}/display/demo")
    expect(display.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)

    kiosk = open_page(browser, errors, viewport={"width": 1080, "height": 1920}, has_touch=True)
    kiosk.goto(f"{base}/kiosk/demo?device={seeded['kiosk_token']}")
    expect(kiosk).to_have_url(f"{base}/kiosk/demo")  # the device token left the address bar
    kiosk.get_by_role("button", name=re.compile("Accounts and deposits")).click()
    expect(kiosk.locator("#t-label")).to_have_text("A001")
    expect(kiosk.locator("#t-qr svg")).to_be_visible()
    track_url = kiosk.locator("#ticket-screen").get_attribute("data-track-url")
    assert track_url.startswith(f"{base}/t/")
    save_screenshot(kiosk, tmp_path, "kiosk-ticket.png")
    kiosk.emulate_media(media="print")  # what a plain browser print puts on paper: the ticket only
    expect(kiosk.locator(".kiosk-bar")).to_be_hidden()
    expect(kiosk.locator("#print-button")).to_be_hidden()
    save_screenshot(kiosk, tmp_path, "kiosk-print.png")
    kiosk.emulate_media(media="screen")

    phone = open_page(browser, errors, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                      device_scale_factor=2)
    phone.goto(track_url)
    expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(phone.locator("#tr-label")).to_have_text("A001")
    expect(phone.locator("#tr-next")).to_be_visible()
    expect(display.locator(".waiting-item").first.locator(".waiting-count")).to_have_text("1")

    staff = open_page(browser, errors, viewport={"width": 1366, "height": 900})
    staff.goto(f"{base}/login")
    staff.get_by_label("E-mail").fill(STAFF)
    staff.get_by_label("Password").fill(seeded["password"])
    staff.get_by_role("button", name="Sign in").click()
    expect(staff).to_have_url(f"{base}/staff")
    save_screenshot(staff, tmp_path, "staff-counters.png")
    staff.get_by_role("link", name=re.compile("Counter 1")).click()  # serves A and C
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    call_next = staff.get_by_role("button", name="Call next")
    expect(call_next).to_be_enabled()

    # Marks that only survive if no page reloads from here on.
    for page in (display, phone):
        page.evaluate("window.__noReload = true")
    call_next.click()

    expect(staff.locator("#current-label")).to_have_text("A001")
    expect(staff.locator("#checklist")).to_contain_text("Photo ID")
    expect(staff.get_by_role("button", name="Start")).to_be_enabled()
    expect(call_next).to_be_disabled()
    expect(display.locator('.board-row[data-counter="Counter 1"] .board-ticket')).to_have_text("A001")
    expect(display.locator("#announce-text")).to_contain_text("A001")
    expect(phone.locator("#tr-counter")).to_have_text("Counter 1")
    expect(phone.locator('[data-when="called"]')).to_be_visible()
    expect(phone.get_by_role("button", name="I need more time")).to_be_hidden()
    for page in (display, phone):
        assert page.evaluate("window.__noReload") is True
    save_screenshot(display, tmp_path, "display.png")
    save_screenshot(phone, tmp_path, "tracking-phone.png")
    save_screenshot(staff, tmp_path, "staff-console.png")
    phone.get_by_role("link", name="繁體中文").click()
    expect(phone.locator('[data-when="called"]')).to_contain_text("輪到您了")
    expect(phone.locator("#tr-counter")).to_have_text("1 號櫃檯")  # the counter's zh_Hant name
    save_screenshot(phone, tmp_path, "tracking-phone-zh-hant.png")

    # Keyboard shortcuts on the console: S starts, F finishes.
    staff.keyboard.press("s")
    expect(staff.locator("#current-status")).to_have_text("Serving")
    expect(phone.locator('[data-when="serving"]')).to_contain_text("1 號櫃檯")
    staff.keyboard.press("f")
    expect(staff.locator("#current-empty")).to_be_visible()
    expect(phone.locator('[data-when="done"]')).to_be_visible()
    expect(display.locator('.board-row[data-counter="Counter 1"] .board-ticket')).to_have_text("—")

    unregistered = open_page(browser, errors, viewport={"width": 1080, "height": 1920})
    assert unregistered.goto(f"{base}/kiosk/demo").status == 401
    expect(unregistered.get_by_role("heading", level=1)).to_have_text("This screen is not registered as a kiosk")
    save_screenshot(unregistered, tmp_path, "kiosk-unregistered.png")

    # The server goes away: the kiosk stops taking taps, the display says it is reconnecting.
    kiosk.locator("#done-button").click()
    expect(kiosk.locator("#start-screen")).to_be_visible()
    server.stop()
    expect(kiosk.locator("#out-of-order")).to_be_visible(timeout=20_000)
    expect(display.locator("#offline-badge")).to_be_visible(timeout=20_000)
    save_screenshot(kiosk, tmp_path, "kiosk-out-of-order.png")

    # It comes back (same port, same database): both recover by themselves.
    server.start()
    expect(kiosk.locator("#out-of-order")).to_be_hidden(timeout=20_000)
    expect(display.locator("#offline-badge")).to_be_hidden(timeout=20_000)
    expect(display.locator("#recent")).to_contain_text("A001")
    save_screenshot(kiosk, tmp_path, "kiosk-start.png")

    assert errors == []


def test_phone_holder_asks_for_more_time_then_leaves_the_queue(server, chromium, seeded, tmp_path):
    errors: list[str] = []
    kiosk = open_page(chromium, errors, viewport={"width": 1920, "height": 1080}, has_touch=True)
    kiosk.goto(f"{server.base}/kiosk/demo?device={seeded['kiosk_token']}")
    tile = kiosk.locator('.service-tile[data-service="C"]')
    tile.click()
    expect(kiosk.locator("#t-label")).to_have_text("C001")
    kiosk.locator("#done-button").click()
    tile.click()
    expect(kiosk.locator("#t-label")).to_have_text("C002")
    track_url = kiosk.locator("#ticket-screen").get_attribute("data-track-url")
    kiosk.locator("#done-button").click()

    phone = open_page(chromium, errors, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    phone.goto(track_url)
    expect(phone.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    expect(phone.locator("#tr-ahead")).to_have_text("1")
    # Counters 1 and 3 serve C, are open and free: both tickets are about to be called.
    expect(phone.locator("#tr-estimate")).to_have_text("Very soon")
    phone.get_by_role("button", name="I need more time").click()
    expect(phone.locator("#track-message")).to_have_text("Done: a few people will go before you.")
    expect(phone.locator("#tr-ahead")).to_have_text("1")  # nobody else waits behind: it cannot move further
    expect(phone.locator("#tr-postponed")).to_be_visible()
    expect(phone.get_by_role("button", name="I need more time")).to_be_hidden()
    save_screenshot(phone, tmp_path, "tracking-phone-waiting.png")

    phone.get_by_role("button", name="Leave the queue").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Stay in the queue").click()
    expect(dialog).to_be_hidden()
    expect(phone.locator('[data-when="waiting"]')).to_be_visible()
    phone.get_by_role("button", name="Leave the queue").click()
    phone.get_by_role("dialog").get_by_role("button", name="Yes, leave").click()
    expect(phone.locator('[data-when="cancelled"]')).to_be_visible()
    expect(phone.get_by_role("button", name="Leave the queue")).to_be_hidden()
    # The kiosk's service buttons count the queue (refreshed by its heartbeat).
    expect(kiosk.locator('[data-waiting-for="C"]')).to_have_text("1 waiting", timeout=15_000)
    save_screenshot(kiosk, tmp_path, "kiosk-start-landscape.png")
    assert errors == []
