"""In a real browser: staff at the counter see a returning customer's recent visits and attach a
walk-in to a record by searching; the manager's customer dashboard shows segments, the churn list
and feedback. Chromium through Playwright, the server as `queue-app run`."""
import re

from browser import STAFF, WAIT_MS, open_page, save_screenshot
from helpers import sign_in
from playwright.sync_api import expect

from queue_app.core.models import utcnow
from queue_app.demo.customers import seed_customer_history


def test_counter_shows_a_returning_customer_and_attaches_a_walk_in(app, session, seeded, server, chromium,  # noqa: F811
                                                                      api, tmp_path):
    seed_customer_history(session, "demo", now=utcnow())
    api.issue("A", phone="0912 000 101")  # Chen Mei-ling, a regular, takes a ticket at the kiosk
    api.issue("A")  # then a walk-in without a phone number
    errors: list[str] = []
    staff = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(staff, server.base, STAFF, seeded["password"])
    staff.get_by_role("link", name=re.compile("Counter 1")).click()
    expect(staff.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    call_next = staff.get_by_role("button", name="Call next")
    expect(call_next).to_be_enabled()
    call_next.click()
    expect(staff.locator("#current-label")).to_have_text("A001")
    panel = staff.locator("#customer-panel")
    expect(panel).to_contain_text("Chen Mei-ling", timeout=WAIT_MS)
    expect(panel).to_contain_text("Core")
    expect(panel.locator(".customer-recent li")).to_have_count(5)
    save_screenshot(staff, tmp_path, "counter-returning-customer.png")

    staff.get_by_role("button", name="Finish").click()
    expect(call_next).to_be_enabled()
    call_next.click()
    expect(staff.locator("#current-label")).to_have_text("A002")
    expect(panel).to_contain_text("No customer record on this ticket", timeout=WAIT_MS)
    staff.get_by_placeholder("Phone or name").fill("Tsai")
    staff.locator("#customer-search").get_by_role("button", name="Search").click()
    results = staff.locator("#customer-results")
    expect(results).to_contain_text("Tsai Hsin-yi")
    expect(results).not_to_contain_text("+886912000107")  # staff see the number masked
    results.get_by_role("button", name="Attach").first.click()
    expect(panel).to_contain_text("Tsai Hsin-yi", timeout=WAIT_MS)
    assert errors == []


def test_manager_sees_segments_churn_list_and_feedback(app, session, seeded, server, chromium, tmp_path):  # noqa: F811
    seed_customer_history(session, "demo", now=utcnow())
    errors: list[str] = []
    manager = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    sign_in(manager, server.base, "manager@demo.test", seeded["password"])
    manager.goto(f"{server.base}/manage/")
    manager.get_by_role("link", name="Customers").click()
    expect(manager.locator("#segments")).to_contain_text("At-risk valuable")
    churn = manager.locator("#churn")
    expect(churn).to_contain_text("Liu Jun")
    row = churn.locator("tr", has_text="Liu Jun")
    row.get_by_role("button", name="Contacted").click()
    expect(manager.locator(".flash")).to_contain_text("Marked as contacted")
    expect(manager.locator("#churn tr", has_text="Liu Jun")).to_contain_text("Max Manager")
    expect(manager.locator("#feedback")).to_contain_text("Average rating")
    save_screenshot(manager, tmp_path, "manager-customers.png")
    manager.locator("#churn").get_by_role("link", name="Liu Jun").click()
    expect(manager.locator("h1")).to_have_text("Liu Jun")
    expect(manager.locator("table.grid")).to_contain_text("Visit")
    save_screenshot(manager, tmp_path, "customer-record.png")
    assert errors == []
