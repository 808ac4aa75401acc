"""Live waits in a real browser (Playwright + Debian Chromium) on `queue-app run`: the branch list
sorts by wait and, once the phone shares its (fixed, test) position, by distance worked out in the
page; and the waits widget renders inside a plain HTML page served from another origin."""
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser import open_page, save_screenshot
from helpers import PHONE, axe_violations
from playwright.sync_api import expect

from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.demo.traffic import open_around_the_clock
from queue_app.tickets import queueing

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
KEELUNG = {"latitude": 25.1290, "longitude": 121.7400}  # the phone, 200 m from North Branch

# The server runs on the SQLite file the `app` fixture writes to; it is requested late (after the
# data, see below), so the collection cannot tell from the fixtures that the tests need that file.
pytestmark = pytest.mark.sqlite_only


def _three_branches(app):
    """Demo (Taipei 101, nobody waiting), North (Keelung, four waiting at one counter) and South
    (no coordinates, nobody waiting): the shortest wait and the nearest are different branches."""
    with app.app_context():
        session = db.session
        open_around_the_clock(session, "demo")
        catalogue.update_branch(session, "demo", latitude=25.0340, longitude=121.5645)
        for slug, name, where in (("north", "North Branch", {"latitude": 25.1283, "longitude": 121.7419}),
                                  ("south", "South Branch", {})):
            catalogue.create_branch(session, slug, name, "Asia/Taipei", opening_hours=ALL_DAY, **where)
            catalogue.create_service(session, slug, "A", "Accounts", expected_minutes=10)
            catalogue.create_counter(session, slug, f"{name} 1", ["A"], state="open")
        for _ in range(4):
            queueing.issue_ticket(session, "north", "A")


def _names(page):
    return page.locator("#branch-list > li .branch-name").all_inner_texts()


def test_the_branch_list_sorts_by_wait_and_by_distance_from_the_phone(request, seeded, chromium, app, axe_source,
                                                                      tmp_path):
    _three_branches(app)
    # Started after the data: its readiness probe opens / and the figures are kept 15 s.
    server = request.getfixturevalue("server")
    errors: list[str] = []
    phone = open_page(chromium, errors, **PHONE, geolocation=KEELUNG, permissions=["geolocation"])
    phone.goto(f"{server.base}/")
    expect(phone.locator("#branch-list > li")).to_have_count(3)
    by_wait = _names(phone)
    assert by_wait[-1] == "North Branch"  # four people ahead at its only counter
    expect(phone.locator("#waits-privacy")).to_be_visible()
    assert axe_violations(phone, axe_source) == []

    phone.get_by_role("button", name="Nearest").click()
    expect(phone.get_by_role("button", name="Nearest")).to_have_attribute("aria-pressed", "true")
    expect(phone.locator("#branch-list > li .branch-name").first).to_have_text("North Branch")
    assert _names(phone) == ["North Branch", "Demo Branch", "South Branch"]  # no coordinates: last
    north, demo = phone.locator("#branch-list > li").nth(0), phone.locator("#branch-list > li").nth(1)
    expect(north.locator(".branch-distance")).to_have_text(re.compile(r"^\d+ m$"))
    expect(demo.locator(".branch-distance")).to_have_text(re.compile(r"^2\d(\.\d)? km$"))  # about 24 km
    expect(phone.locator("#branch-list > li").nth(2).locator(".branch-distance")).to_be_hidden()
    save_screenshot(phone, tmp_path, "waits-by-distance.png")
    assert axe_violations(phone, axe_source) == []

    phone.get_by_role("button", name="Shortest wait").click()
    expect(phone.get_by_role("button", name="Shortest wait")).to_have_attribute("aria-pressed", "true")
    expect(phone.locator("#branch-list > li .branch-name").last).to_have_text("North Branch")
    assert _names(phone) == by_wait
    assert errors == []


class _HostPage(BaseHTTPRequestHandler):
    """A bank's own page on another origin, with the copy-paste snippet from the docs."""

    snippet = ""

    def do_GET(self):
        body = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Our branch</title></head>"
                f"<body><h1>Visit us</h1>{self.snippet}</body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_widget_renders_on_a_page_of_another_origin(request, seeded, chromium, app, axe_source):
    _three_branches(app)
    server = request.getfixturevalue("server")  # after the data, as above
    _HostPage.snippet = (f'<div data-queue-waits="demo" data-lang="zh_Hant" data-title="Demo waits"></div>'
                         f'<script src="{server.base}/static/js/waits_widget.js" async></script>')
    host = ThreadingHTTPServer(("127.0.0.1", 0), _HostPage)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        errors: list[str] = []
        page = open_page(chromium, errors, **PHONE)
        # "localhost" against the app's 127.0.0.1: another origin, another site.
        page.goto(f"http://localhost:{host.server_address[1]}/")
        frame = page.frame_locator("iframe[title='Demo waits']")
        expect(frame.locator("h1")).to_have_text("Demo Branch")
        expect(frame.locator(".wait-service").first).to_have_text("帳戶與存款")
        expect(frame.get_by_role("link", name=re.compile("預約"))).to_have_attribute("target", "_blank")
        # Sized to its content by the height it posts to the host page.
        expect(page.locator("iframe")).not_to_have_attribute("style", re.compile(r"height:\s*16rem"))
        assert errors == []
        embed = page.context.new_page()
        embed.goto(f"{server.base}/embed/waits/demo")
        assert axe_violations(embed, axe_source) == []
    finally:
        host.shutdown()
        host.server_close()
