"""Helpers of the browser tests (Playwright on Debian's Chromium): pages, screenshots, waits. The
browser and the app server they drive are fixtures in conftest.py (`chromium`, `server`)."""
import os
import re
import shutil
from pathlib import Path

# Screenshots are kept here (CI keeps the folder; `QUEUE_APP_SCREENSHOTS` puts them elsewhere);
# the path is printed at the end of the run (conftest.py).
SCREENS = Path(os.environ.get("QUEUE_APP_SCREENSHOTS") or Path(__file__).resolve().parent / "artifacts" / "screenshots")
WAIT_MS = 15_000
STAFF = "staff1@demo.test"


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


def open_counter_console(browser, errors: list, base: str, password: str, counter: str):
    """Staff 1 signed in on a desktop-sized page, at `counter`'s console, joined to the live feed."""
    from playwright.sync_api import expect

    staff = open_page(browser, errors, viewport={"width": 1366, "height": 900})
    staff.goto(f"{base}/login")
    staff.get_by_label("E-mail").fill(STAFF)
    staff.get_by_label("Password").fill(password)
    staff.get_by_role("button", name="Sign in").click()
    staff.get_by_role("link", name=re.compile(counter)).click()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    return staff
