"""End to end in a real browser (Playwright + Debian Chromium, never a downloaded browser).

The real server runs as `queue-app run` in a subprocess on a migrated and seeded SQLite file.
A kiosk issues a ticket, staff call it from the console, and, without any reload, the lobby
display shows it at the counter and the holder's phone shows where to go. Then the server
stops and comes back: the kiosk shows its out-of-order screen and recovers, the display shows
that it is reconnecting and resynchronises.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import require_binary

# Screenshots are kept here (CI keeps the folder; `QUEUE_APP_SCREENSHOTS` puts them elsewhere);
# the path is printed at the end of the run (conftest.py).
SCREENS = Path(os.environ.get("QUEUE_APP_SCREENSHOTS") or Path(__file__).resolve().parent / "artifacts" / "screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 15_000
STAFF = "staff1@demo.test"


def chromium_path() -> str:
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else require_binary("chromium")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`queue-app run` in a subprocess: the product as it ships, not a test double."""

    def __init__(self, db_path: Path, log_path: Path, host: str = "127.0.0.1"):
        self.port = free_port()
        self.host = host  # another address than loopback: reached as from the lobby network
        self.base = f"http://{host}:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "QUEUE_APP_DATABASE_URL": f"sqlite:///{db_path}",
            "QUEUE_APP_SECRET_KEY": "browser-test-secret",  # sessions survive the restart below
            "QUEUE_APP_BASE_URL": self.base,
            "QUEUE_APP_RATELIMIT_ENABLED": "0",
            "QUEUE_APP_RUN_SCHEDULER": "0",
        }
        self.process = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from queue_app.cli import main; main()", "run", "--port", str(self.port),
                 "--host", "127.0.0.1" if self.host == "127.0.0.1" else "0.0.0.0"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.base + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        pytest.fail(f"server did not answer in 30 s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def server(seeded, db_path, tmp_path):
    running = Server(db_path, tmp_path / "server.log")
    running.start()
    yield running
    running.stop()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


@pytest.fixture
def chromium(chromium_session):  # chromium_session (conftest.py): one Chromium for the whole run
    """The shared browser; each test's pages (contexts) are closed after it, so none outlives its server."""
    yield chromium_session
    for context in list(chromium_session.contexts):
        context.close()


def open_page(browser, errors: list, **context_options):
    """A page in its own context (its own cookies: kiosk, staff and phone are different devices)."""
    page = browser.new_context(**context_options).new_page()
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    # A Content-Security-Policy refusal is only a console message: count it as an error too.
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.set_default_timeout(WAIT_MS)
    return page


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / name)
    for saved in (path, SCREENS / name):
        assert saved.exists() and saved.stat().st_size > 0
    return path


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
