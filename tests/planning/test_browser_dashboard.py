"""In a real browser: the manager dashboard draws its charts (Chart.js from the app's own static
files), keeps today's figures live, saves a staffing override and runs a what-if.
Chromium through Playwright, the server as `queue-app run`."""
import json
import re
import urllib.request

from browser import SCREENS, WAIT_MS, open_page, save_screenshot
from helpers import _walk_in_history, sign_in
from playwright.sync_api import expect

from queue_app.catalogue.operations import get_branch
from queue_app.core.models import utcnow
from queue_app.planning import plan as planning
from queue_app.tickets import numbering

CHARTS = ("chart-today", "chart-arrivals", "chart-waits", "chart-days", "chart-services", "chart-counters")


def _issue_at_the_kiosk(base: str, kiosk_token: str, service: str) -> None:
    """A ticket through the running server, so that it publishes the change to the branch room."""
    request = urllib.request.Request(
        f"{base}/api/v1/branches/demo/tickets", data=json.dumps({"service": service}).encode(), method="POST",
        headers={"Authorization": f"Bearer {kiosk_token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_manager_dashboard_draws_charts_saves_an_override_and_runs_a_what_if(app, session, seeded, server,  # noqa: F811
                                                                              chromium, tmp_path):
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, numbering.local_day(utcnow(), branch.zone))
    planning.plan_branch(session, branch)
    session.commit()

    errors: list[str] = []
    manager = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    # Every console error counts, but the browser's own request for a favicon (the app has none).
    manager.on("console", lambda message: errors.append(f"console: {message.text} {message.location.get('url')}")
               if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    sign_in(manager, server.base, "manager@demo.test", seeded["password"])
    manager.goto(f"{server.base}/manage/")
    manager.get_by_role("link", name="Dashboard").click()
    expect(manager.locator("h1")).to_contain_text("Dashboard")
    for chart in CHARTS:
        expect(manager.locator(f"canvas#{chart}")).to_have_attribute("data-rendered", "true")
    drawn = manager.evaluate("""() => ['chart-arrivals', 'chart-waits'].map(id => {
        const chart = Chart.getChart(id);
        return chart ? [chart.data.datasets.length, chart.data.labels.length, chart.width > 0] : null; })""")
    assert drawn[0][0] == 4 and drawn[0][1] > 0 and drawn[0][2] and drawn[1][0] == 4
    # Intervals nobody was called in have no wait (null): the lines break there instead of bridging them.
    spans = manager.evaluate("() => Chart.getChart('chart-waits').data.datasets.slice(0, 3).map(d => d.spanGaps)")
    assert spans == [False, False, False]

    # Live: a ticket from the kiosk shows up without a reload (the branch room's push, then the live endpoint).
    expect(manager.locator("html")).to_have_attribute("data-live", "joined", timeout=WAIT_MS)
    waiting = int(manager.locator("#live-waiting").inner_text())
    _issue_at_the_kiosk(server.base, seeded["kiosk_token"], "A")
    expect(manager.locator("#live-waiting")).to_have_text(str(waiting + 1), timeout=WAIT_MS)

    # An override of the second interval of the plan's day.
    row = manager.locator("#plan-grid tbody tr").nth(1)
    time = row.locator("th").inner_text()
    row.get_by_label(f"Counters at {time}").fill("6")
    row.get_by_role("button", name=f"Save override of {time}").click()
    expect(manager.locator(".flash")).to_contain_text(f"{time}: 6 counters")
    row = manager.locator("#plan-grid tbody tr").nth(1)
    expect(row).to_have_class(re.compile("overridden"))
    expect(row.locator(".counters-cell")).to_contain_text("6")

    # What-if: one counter more all day.
    manager.locator("#what-if-offset").fill("1")
    manager.get_by_role("button", name="Simulate").click()
    expect(manager.locator("#what-if-form")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    results = manager.locator("#what-if-results")
    expect(results).to_be_visible()
    expect(results.locator("tbody tr")).to_have_count(manager.locator("#plan-grid tbody tr").count())
    expect(manager.locator("canvas#chart-what-if")).to_have_attribute("data-rendered", "true")
    expect(manager.locator("#what-if-summary")).to_contain_text("Counter-hours")
    manager.locator("#what-if").scroll_into_view_if_needed()
    save_screenshot(manager, tmp_path, "manager-dashboard-what-if.png")
    manager.locator("#today").scroll_into_view_if_needed()
    save_screenshot(manager, tmp_path, "manager-dashboard.png")
    SCREENS.mkdir(parents=True, exist_ok=True)
    manager.screenshot(path=str(SCREENS / "manager-dashboard-full.png"), full_page=True)

    assert errors == []

    # A what-if the server refuses (422) is explained on the page, not a crash.
    manager.locator("#what-if-offset").fill("500")
    manager.get_by_role("button", name="Simulate").click()
    expect(manager.locator("#what-if-form")).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    expect(manager.locator("#what-if-status")).to_contain_text("whole numbers")
    assert [e for e in errors if "status of 422" not in e] == []
