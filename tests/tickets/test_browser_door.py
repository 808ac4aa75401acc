"""The door sign for "I'm here" in a real browser (Playwright + Debian Chromium) on `queue-app run`:
a signed-in member of staff opens /door/demo on a tablet, the QR is today's code, the printed
page is one A4 sheet without the button, and the tablet reloads itself after the branch's midnight
(the browser's clock is moved forward with Playwright's clock; the server's is the real one).
"""
import re
import time

import pytest
from browser import STAFF, open_page, save_screenshot
from helpers import AXE, axe_violations, make_app, sign_in
from playwright.sync_api import expect

from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db

TABLET = {"viewport": {"width": 800, "height": 1280}, "has_touch": True}


@pytest.fixture
def remote_allowed(db_path, server):
    """Remote tickets allowed at the demo branch, on the server's database file."""
    app = make_app(db_path)
    with app.app_context():
        catalogue.update_branch(db.session, "demo", allow_remote_tickets=True)
        db.engine.dispose()


def test_the_door_tablet_shows_todays_code_prints_on_a4_and_reloads_after_midnight(server, chromium, seeded,
                                                                                   remote_allowed, tmp_path):
    errors: list[str] = []
    base = server.base
    door = open_page(chromium, errors, **TABLET)
    sign_in(door, base, STAFF, seeded["password"])
    expect(door.get_by_role("link", name="Door code")).to_be_visible()
    door.clock.install(time=time.time())  # the page's timers run on a clock the test can move
    door.goto(f"{base}/door/demo")
    expect(door.get_by_role("heading", level=1)).to_have_text("Demo Branch")
    expect(door.get_by_text("Joined from home? Scan to say you are here")).to_be_visible()
    expect(door.get_by_role("img", name="I'm here")).to_be_visible()
    here_url = door.locator("#door").get_attribute("data-here-url")
    assert re.fullmatch(rf"{re.escape(base)}/here/demo/[A-Z2-9]{{6}}", here_url)
    box = door.locator(".door-qr").bounding_box()
    assert box["width"] >= 0.75 * TABLET["viewport"]["width"]  # large: read from a step away
    assert axe_violations(door, AXE.read_text(encoding="utf-8")) == []
    save_screenshot(door, tmp_path, "door-tablet.png")

    # Printed: no button, and the code still fills most of the A4 width (150 mm of 180 mm).
    door.emulate_media(media="print")
    expect(door.get_by_role("button", name="Print")).to_be_hidden()
    assert door.locator(".door-qr").bounding_box()["width"] > 500
    pdf = tmp_path / "door.pdf"
    door.pdf(path=str(pdf), prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())) == 1  # one sheet
    door.emulate_media(media="screen")

    # Left open over night: nothing before the branch's midnight, a reload after it.
    data = door.evaluate("JSON.parse(document.getElementById('page-data').textContent)")
    door.evaluate("document.documentElement.dataset.loadedBefore = 'yes'")
    until_midnight = data["reload_at_ms"] - data["server_time_ms"]
    door.clock.fast_forward(until_midnight - 120_000)
    assert door.locator("html").get_attribute("data-loaded-before") == "yes"
    door.clock.fast_forward(150_000)
    expect(door.locator("html")).not_to_have_attribute("data-loaded-before", "yes")  # a new page
    expect(door.locator("#door")).to_have_attribute("data-here-url", here_url)  # the server's day has not changed
    assert errors == []
