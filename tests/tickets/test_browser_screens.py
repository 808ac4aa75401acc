"""The device screens at the sizes they are sold in, in each language, in a real browser.

The lobby TV (1920x1080 and 1366x768) shows the counters, at least four recent calls and the
waiting panel at once; the kiosk (1080x1920 portrait, 1280x1024 and 1024x768 landscape) shows
its service buttons and "I have a booking" without scrolling, and after a tap the ticket number
is on screen. Every element is checked against the window (its bounding box), and a screenshot
of each size and language is kept (tests/artifacts/screenshots, screens-*.png).
"""
import re

import requests
from browser import STAFF, WAIT_MS, open_page, save_screenshot
from playwright.sync_api import expect
from sqlalchemy import select

from queue_app.catalogue.models import Branch, Counter
from queue_app.core.extensions import db
from queue_app.tickets import queueing

LANGUAGES = ("en", "zh_Hant", "zh_Hans")
TV_SIZES = ((1920, 1080), (1366, 768))
KIOSK_SIZES = ((1080, 1920), (1280, 1024), (1024, 768))


def assert_inside_window(page, locator, what: str) -> None:
    box = locator.bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert box is not None, f"{what} is not rendered"
    inside = (box["x"] >= -0.5 and box["y"] >= -0.5 and box["x"] + box["width"] <= width + 0.5
              and box["y"] + box["height"] <= height + 0.5)
    assert inside, f"{what} at {box} is outside the {width}x{height} window"


def serve_calls(app, calls: int) -> None:
    """`calls` tickets called and served, then every counter busy with one more: a lobby mid-morning."""
    with app.app_context():
        counters = db.session.scalars(select(Counter).join(Branch).where(Branch.slug == "demo")
                                      .order_by(Counter.name)).all()
        counter_ids = [c.id for c in counters]
        for index in range(calls + len(counter_ids) + 2):
            queueing.issue_ticket(db.session, "demo", "ABC"[index % 3])
        done = 0
        while done < calls:
            for counter_id in counter_ids:
                ticket = queueing.call_next(db.session, counter_id)
                if ticket is not None and done < calls:
                    queueing.start(db.session, ticket.id)
                    queueing.finish(db.session, ticket.id)
                    done += 1
        for counter_id in counter_ids:
            queueing.call_next(db.session, counter_id)


def test_lobby_tv_shows_counters_four_recent_calls_and_the_waiting_panel_at_each_size(server, chromium, app,  # noqa: F811
                                                                                     tmp_path):
    serve_calls(app, 6)
    errors: list[str] = []
    for width, height in TV_SIZES:
        display = open_page(chromium, errors, viewport={"width": width, "height": height})
        for language in LANGUAGES:
            display.goto(f"{server.base}/display/demo?lang={language}")
            expect(display.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
            expect(display.locator(".board-row")).to_have_count(3)
            save_screenshot(display, tmp_path, f"screens-display-{width}x{height}-{language}.png")
            recent = display.locator(".recent-item")
            assert recent.count() >= 4, f"{recent.count()} recent calls at {width}x{height} ({language})"
            for index in range(recent.count()):
                assert_inside_window(display, recent.nth(index), f"recent call {index + 1}")
            waiting = display.locator(".waiting-item")
            expect(waiting).to_have_count(3)
            for index in range(3):
                assert_inside_window(display, waiting.nth(index), f"waiting line {index + 1}")
                assert_inside_window(display, display.locator(".board-row").nth(index), f"counter row {index + 1}")
            assert_inside_window(display, display.locator("#announce-text"), "announcement bar")
            # The date as the other pages write it in this language (CLDR forms, day before month in English).
            date = display.locator("#clock-date").inner_text()
            if language == "en":
                assert re.fullmatch(r"[A-Z][a-z]+,? \d{1,2} [A-Z][a-z]+", date), date
            else:
                assert re.fullmatch(r"\d{1,2}月\d{1,2}日 ?星期.", date), date
        display.context.close()
    assert errors == []


def test_kiosk_start_and_ticket_screens_fit_without_scrolling_at_each_size(server, chromium, seeded, tmp_path):  # noqa: F811
    errors: list[str] = []
    for width, height in KIOSK_SIZES:
        kiosk = open_page(chromium, errors, viewport={"width": width, "height": height}, has_touch=True)
        kiosk.goto(f"{server.base}/kiosk/demo?device={seeded['kiosk_token']}")
        for language in LANGUAGES:
            kiosk.goto(f"{server.base}/kiosk/demo?lang={language}")
            tiles = kiosk.locator(".service-tile")
            expect(tiles).to_have_count(3)
            save_screenshot(kiosk, tmp_path, f"screens-kiosk-start-{width}x{height}-{language}.png")
            for index in range(3):
                assert_inside_window(kiosk, tiles.nth(index), f"service button {index + 1}")
            assert_inside_window(kiosk, kiosk.locator("#booking-button"), "I have a booking")

            tiles.last.tap()
            expect(kiosk.locator("#t-label")).to_have_text(re.compile(r"^C\d{3}$"))
            save_screenshot(kiosk, tmp_path, f"screens-kiosk-ticket-{width}x{height}-{language}.png")
            for selector, what in (("#t-label", "ticket number"), ("#t-qr svg", "QR code"), ("#done-button", "Done")):
                assert_inside_window(kiosk, kiosk.locator(selector), what)
            assert kiosk.evaluate("window.scrollY") == 0
        kiosk.context.close()
    assert errors == []


def test_display_announces_each_call_in_the_branch_announcement_languages_in_turn(server, chromium, app, api,  # noqa: F811
                                                                                  seeded, tmp_path):
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.slug == "demo"))
        branch.announcement_languages = ["zh_Hant", "en"]
        db.session.commit()
    errors: list[str] = []
    display = open_page(chromium, errors, viewport={"width": 1366, "height": 768})
    display.goto(f"{server.base}/display/demo?lang=zh_Hans")
    expect(display.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    # Through the running server, so that its live push reaches the page.
    api_base = f"{server.base}/api/v1"
    ticket = requests.post(f"{api_base}/branches/demo/tickets", json={"service": "A"},
                           headers={"Authorization": f"Bearer {seeded['kiosk_token']}"}, timeout=10).json()
    token = requests.post(f"{api_base}/auth/token", json={"email": STAFF, "password": seeded["password"]},
                          timeout=10).json()["token"]
    called = requests.post(f"{api_base}/counters/{api.counter_id('Counter 1')}/call-next",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert called.status_code == 200
    line = display.locator("#announce-text")
    expect(line).to_contain_text(f"請 {ticket['label']} 號到 ", timeout=WAIT_MS)  # the counter in its zh_Hant name
    expect(line).to_have_attribute("lang", "zh-TW")
    save_screenshot(display, tmp_path, "screens-display-announcement-zh-hant.png")
    # Then in English (after the Chinese sentence is spoken, or its time-out on a machine without voices).
    expect(line).to_have_text(f"Ticket {ticket['label']}, please go to Counter 1", timeout=20_000)
    expect(line).to_have_attribute("lang", "en-US")
    save_screenshot(display, tmp_path, "screens-display-announcement-en.png")
    assert errors == []


def test_every_page_has_an_icon_and_favicon_ico_finds_it(server):  # noqa: F811
    icon = requests.get(f"{server.base}/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.history and icon.history[0].status_code == 301
    for path in ("/", "/display/demo", "/login"):
        page = requests.get(server.base + path, timeout=10).text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
