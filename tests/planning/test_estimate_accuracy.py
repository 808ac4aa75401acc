"""The wait-estimate accuracy report: exact figures on constructed pairs (bands, services, bias,
range edges, exclusions, branch-local days over a DST change), the stats API and the dashboard
section, and the daily close's coverage-drift warning."""
import itertools
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import PASSWORD, login_as, page_data
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Service
from queue_app.catalogue.operations import get_branch
from queue_app.core.errors import Invalid
from queue_app.jobs import scheduler
from queue_app.planning.estimate_accuracy import estimate_accuracy
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket, TicketEvent

DAY = date(2026, 3, 2)  # a Monday; the demo branch is in Asia/Taipei (UTC+8)
TAIPEI = ZoneInfo("Asia/Taipei")
BERLIN = ZoneInfo("Europe/Berlin")
_numbers = itertools.count(1)


def _ticket(session, branch, service, issued, *, wait=None, estimate=None, status="done", priority="normal"):
    """A ticket issued at `issued` (aware, any zone) with the estimate (minutes, low, high) it was shown and
    called `wait` minutes later (None: never called). Its local day comes from the numbering helper."""
    number = next(_numbers)
    issued = issued.astimezone(ZoneInfo("UTC"))
    called = issued + timedelta(minutes=wait) if wait is not None else None
    minutes, low, high = estimate or (None, None, None)
    ticket = Ticket(branch_id=branch.id, service_id=service.id, local_date=numbering.local_day(issued, branch.zone),
                    prefix=service.code, number=number, label=f"{service.code}{number:03d}", status=status,
                    priority=priority, effective_at=issued, sort_key=issued, issued_at=issued, called_at=called,
                    started_at=called, finished_at=called + timedelta(minutes=5) if called else None,
                    token_hash=f"accuracy-{number}", estimate_minutes=minutes, estimate_low=low, estimate_high=high)
    session.add(ticket)
    session.flush()
    return ticket


def _services(session, branch):
    return {s.code: s for s in session.scalars(select(Service).where(Service.branch_id == branch.id))}


def at(day, hour, minute=0, zone=TAIPEI):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


@pytest.fixture
def pairs(session):
    """On DAY at the demo branch: seven pairs with known errors, and tickets that are not pairs."""
    branch = get_branch(session, "demo")
    a, b = _services(session, branch)["A"], _services(session, branch)["B"]
    _ticket(session, branch, a, at(DAY, 9, 0), wait=2, estimate=(3, 1, 6))     # 0-5, +1, inside
    _ticket(session, branch, a, at(DAY, 9, 5), wait=5, estimate=(4, 2, 5))     # 0-5, -1, on the upper bound
    _ticket(session, branch, a, at(DAY, 9, 6), wait=0, estimate=(0, 0, 2))     # 0-5, 0, did not wait
    _ticket(session, branch, a, at(DAY, 9, 30), wait=9, estimate=(8, 5, 12), status="no_show")  # 5-15, -1, inside
    _ticket(session, branch, b, at(DAY, 10, 0), wait=6, estimate=(10, 6, 14))  # 5-15, +4, on the lower bound
    _ticket(session, branch, b, at(DAY, 10, 10), wait=20, estimate=(12, 8, 16))  # 5-15, -8, above
    _ticket(session, branch, b, at(DAY, 11, 0), wait=25, estimate=(40, 30, 55))  # 30-60, +15, below
    # Not pairs: gave up, a booking, no estimate, still waiting, and the day after.
    left = _ticket(session, branch, a, at(DAY, 9, 40), estimate=(5, 3, 8), status="cancelled")
    session.add(TicketEvent(ticket_id=left.id, branch_id=branch.id, type="left", at=at(DAY, 9, 55), data={}))
    _ticket(session, branch, b, at(DAY, 10, 20), wait=30, estimate=(5, 3, 8), priority="appointment")
    _ticket(session, branch, a, at(DAY, 10, 30), wait=7)
    _ticket(session, branch, a, at(DAY, 11, 30), estimate=(5, 3, 8), status="waiting")
    _ticket(session, branch, a, at(DAY + timedelta(days=1), 9, 0), wait=4, estimate=(10, 8, 12))
    session.commit()
    return branch


def test_figures_overall_by_band_and_by_service(session, pairs):
    report = estimate_accuracy(session, pairs, DAY, DAY, now=at(DAY + timedelta(days=1), 8)).as_dict()
    assert report["total"] == {"pairs": 7, "waited": 6, "within_range": 0.6667, "mean_estimate": 11.0,
                               "mean_actual": 9.57, "mean_absolute_error": 4.29, "bias": 1.43}
    bands = {row["band"]: row for row in report["bands"]}
    assert list(bands) == ["0-5", "5-15", "15-30", "30-60", "60+"]
    # Bounds are inclusive; the ticket that did not wait is a pair but not judged for the range.
    assert bands["0-5"] == {"band": "0-5", "low": 0.0, "high": 5.0, "pairs": 3, "waited": 2, "within_range": 1.0,
                                 "mean_estimate": 2.33, "mean_actual": 2.33, "mean_absolute_error": 0.67,
                                 "bias": 0.0}
    assert (bands["5-15"]["pairs"], bands["5-15"]["within_range"], bands["5-15"]["bias"],
            bands["5-15"]["mean_absolute_error"]) == (3, 0.6667, -1.67, 4.33)
    assert bands["15-30"] == {"band": "15-30", "low": 15.0, "high": 30.0, "pairs": 0, "waited": 0,
                              "within_range": None, "mean_estimate": None, "mean_actual": None,
                              "mean_absolute_error": None, "bias": None}
    assert (bands["30-60"]["pairs"], bands["30-60"]["within_range"], bands["30-60"]["bias"]) == (1, 0.0, 15.0)
    assert (bands["60+"]["high"], bands["60+"]["pairs"]) == (None, 0)

    services = {row["code"]: row for row in report["services"]}
    assert set(services) == {"A", "B"}  # service C had no pairs
    assert services["A"]["name"] == _services(session, pairs)["A"].name
    assert (services["A"]["pairs"], services["A"]["waited"], services["A"]["within_range"], services["A"]["bias"],
            services["A"]["mean_absolute_error"]) == (4, 3, 1.0, -0.25, 0.75)
    # Estimates of B ran long on average: a positive bias.
    assert (services["B"]["pairs"], services["B"]["within_range"], services["B"]["bias"],
            services["B"]["mean_absolute_error"]) == (3, 0.3333, 3.67, 9.0)

    assert [(row["date"], row["pairs"], row["closed"]) for row in report["days"]] == [("2026-03-02", 7, True)]
    points = report["chart"]["points"]
    assert [(p["estimate"], p["pairs"], p["mean_actual"]) for p in points] == \
        [(0, 1, 0.0), (3, 1, 2.0), (4, 1, 5.0), (8, 1, 9.0), (10, 1, 6.0), (12, 1, 20.0), (40, 1, 25.0)]


def test_chart_points_per_estimated_minute_with_a_cap_and_days_of_the_range(session, pairs):
    branch = pairs
    a = _services(session, branch)["A"]
    day = DAY + timedelta(days=1)
    for minute, wait in ((0, 4), (1, 14), (2, 9)):
        _ticket(session, branch, a, at(day, 14, minute), wait=wait, estimate=(10, 8, 12))
    _ticket(session, branch, a, at(day, 15), wait=70, estimate=(75, 60, 95))
    _ticket(session, branch, a, at(day, 15, 5), wait=50, estimate=(90, 70, 110))
    session.commit()
    report = estimate_accuracy(session, branch, day, day, now=at(day, 12)).as_dict()
    points = {p["estimate"]: p for p in report["chart"]["points"]}
    assert report["chart"]["cap_minutes"] == 60 and sorted(points) == [10, 60]
    # Four waits for "10 min" (4, 14, 9 and the morning's 4): mean 7.75, 10th and 90th percentiles interpolated.
    assert (points[10]["pairs"], points[10]["mean_actual"], points[10]["p10_actual"], points[10]["p90_actual"]) == \
        (4, 7.75, 4.0, 12.5)
    assert (points[10]["and_longer"], points[60]["and_longer"], points[60]["pairs"], points[60]["mean_actual"]) == \
        (False, True, 2, 60.0)
    assert {row["band"]: row["pairs"] for row in report["bands"]}["60+"] == 2
    assert [row["closed"] for row in report["days"]] == [False]  # `now` is that day: still open

    week = estimate_accuracy(session, branch, DAY - timedelta(days=1), day, now=at(day, 20)).as_dict()
    assert [(row["date"], row["pairs"]) for row in week["days"]] == \
        [("2026-03-01", 0), ("2026-03-02", 7), ("2026-03-03", 6)]
    assert week["days"][0]["within_range"] is None and week["total"]["pairs"] == 13


def test_an_empty_range_gives_zero_pairs_and_nulls_and_a_bad_range_is_refused(session, pairs):
    empty = estimate_accuracy(session, pairs, date(2026, 1, 5), date(2026, 1, 6), now=at(DAY, 20)).as_dict()
    assert empty["total"] == {"pairs": 0, "waited": 0, "within_range": None, "mean_estimate": None,
                              "mean_actual": None, "mean_absolute_error": None, "bias": None}
    assert [row["pairs"] for row in empty["bands"]] == [0] * 5 and empty["services"] == []
    assert len(empty["days"]) == 2 and empty["chart"]["points"] == []
    for first, last in ((DAY, DAY - timedelta(days=1)), (DAY - timedelta(days=92), DAY), (date(1999, 12, 31), DAY)):
        with pytest.raises(Invalid):
            estimate_accuracy(session, pairs, first, last, now=at(DAY, 20))


def test_branch_local_days_over_the_autumn_dst_change(session):
    """Europe/Berlin leaves summer time on 2026-10-25 at 03:00 (UTC+2 to UTC+1): a 25-hour day."""
    catalogue.create_branch(session, "berlin", "Berlin", "Europe/Berlin")
    catalogue.create_service(session, "berlin", "A", "Accounts")
    branch = get_branch(session, "berlin")
    service = _services(session, branch)["A"]
    sunday = date(2026, 10, 25)
    _ticket(session, branch, service, at(sunday - timedelta(days=1), 23, 59, BERLIN), wait=3, estimate=(3, 1, 5))
    _ticket(session, branch, service, at(sunday, 0, 0, BERLIN) + timedelta(seconds=30), wait=4, estimate=(3, 1, 5))
    # Issued at 02:50 summer time, called at 02:10 winter time: 20 minutes, not -40.
    issued = datetime(2026, 10, 25, 0, 50, tzinfo=ZoneInfo("UTC"))
    assert issued.astimezone(BERLIN).strftime("%H:%M %Z") == "02:50 CEST"
    _ticket(session, branch, service, issued, wait=20, estimate=(15, 10, 25))
    _ticket(session, branch, service, at(sunday, 23, 50, BERLIN), wait=6, estimate=(4, 2, 6))
    _ticket(session, branch, service, at(sunday + timedelta(days=1), 0, 10, BERLIN), wait=9, estimate=(3, 1, 5))
    session.commit()
    # In UTC the second ticket was issued on the 24th and the last one on the 25th.
    assert [t.issued_at.date().isoformat() for t in session.scalars(select(Ticket).where(
        Ticket.branch_id == branch.id).order_by(Ticket.issued_at))] == \
        ["2026-10-24", "2026-10-24", "2026-10-25", "2026-10-25", "2026-10-25"]
    now = datetime(2026, 10, 27, 12, tzinfo=BERLIN)
    day = estimate_accuracy(session, branch, sunday, sunday, now).as_dict()
    assert day["total"]["pairs"] == 3 and day["total"]["mean_actual"] == 10.0  # 4, 20 and 6
    assert day["total"]["within_range"] == 1.0 and day["total"]["bias"] == pytest.approx(-2.67)
    around = estimate_accuracy(session, branch, sunday - timedelta(days=1), sunday + timedelta(days=1), now)
    assert [(row["date"], row["pairs"]) for row in around.days] == \
        [("2026-10-24", 1), ("2026-10-25", 3), ("2026-10-26", 1)]


# --- API and dashboard -------------------------------------------------------------------------------

def test_stats_api_carries_the_accuracy_and_keeps_its_other_fields(api, session, pairs):
    response = api.call("GET", "/branches/demo/stats?from=2026-03-02&to=2026-03-02", "manager@demo.test")
    assert response.status_code == 200, response.json
    body = response.json
    assert {"branch", "from", "to", "interval_minutes", "target_wait_minutes", "target", "total", "days",
            "intervals", "services", "counters"} < set(body)
    accuracy = body["estimate_accuracy"]
    assert set(accuracy) == {"total", "bands", "services", "days", "chart"}
    assert (accuracy["total"]["pairs"], accuracy["total"]["bias"], accuracy["total"]["within_range"]) == (7, 1.43, 0.6667)
    assert [row["pairs"] for row in accuracy["bands"]] == [3, 3, 0, 1, 0]
    assert {row["code"]: row["bias"] for row in accuracy["services"]} == {"A": -0.25, "B": 3.67}
    assert [p["estimate"] for p in accuracy["chart"]["points"]] == [0, 3, 4, 8, 10, 12, 40]
    refused = api.call("GET", "/branches/demo/stats?from=2026-03-05&to=2026-03-01", "manager@demo.test")
    assert refused.status_code == 422 and refused.json["error"]["code"] == "invalid_field"
    assert "to" in refused.json["error"]["fields"]
    schema = api.call("GET", "/openapi.json").json["components"]["schemas"]
    stats_schema = next(s for name, s in schema.items() if name.startswith("Stats") and "counters" in s["properties"])
    assert "estimate_accuracy" in stats_schema["properties"]
    assert {"pairs", "waited", "within_range", "bias", "mean_absolute_error"} <= set(schema["AccuracyFigures"]["properties"])


def test_stats_api_refuses_managers_of_another_branch(api, session, pairs):
    catalogue.create_branch(session, "north", "North Branch", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", PASSWORD, "manager", ["north"])
    other = api.call("GET", "/branches/demo/stats?from=2026-03-02", "north.manager@demo.test")
    assert (other.status_code, other.json["error"]["code"]) == (403, "other_branch")
    assert "estimate_accuracy" not in other.json and "total" not in other.json
    staff = api.call("GET", "/branches/demo/stats?from=2026-03-02", "staff1@demo.test")
    assert (staff.status_code, staff.json["error"]["code"]) == (403, "role_required")
    own = api.call("GET", "/branches/north/stats?from=2026-03-02&to=2026-03-02", "north.manager@demo.test")
    assert own.status_code == 200 and own.json["estimate_accuracy"]["total"]["pairs"] == 0


def test_dashboard_shows_the_accuracy_section(client, session, pairs):
    login_as(client, "manager@demo.test")
    page = client.get("/manage/branches/demo/dashboard?from=2026-03-02&to=2026-03-02")
    assert page.status_code == 200
    html = page.data.decode()
    for marker in ('id="accuracy"', "Wait estimate accuracy", 'href="#accuracy"', 'id="accuracy-bands"',
                   'id="accuracy-services"', 'id="chart-accuracy"',
                   "Estimates judged: 7. Off by 4.3 min on average, bias +1.4 min, 66.7 % within the range shown."):
        assert marker in html, marker
    assert '<th scope="row">60+</th>' in html and "<td>-1.7</td>" in html  # the 5-15 band's bias
    data = page_data(page.data)
    assert [p["estimate"] for p in data["accuracy"]["chart"]["points"]] == [0, 3, 4, 8, 10, 12, 40]
    assert data["texts"]["accuracy_perfect"]
    empty = client.get("/manage/branches/demo/dashboard?from=2026-01-05&to=2026-01-06").data.decode()
    assert "No called walk-in tickets with an estimate in this range." in empty and 'id="chart-accuracy"' not in empty
    assert client.get("/manage/branches/demo/dashboard?from=2026-03-02&to=2026-03-02&lang=zh_Hant").status_code == 200


# --- the daily close's drift warning -----------------------------------------------------------------

DRIFT_DAYS = (date(2026, 10, 20), date(2026, 10, 21), date(2026, 10, 22))
AFTER = datetime(2026, 10, 23, 6, 0, tzinfo=BERLIN)


def _drift_branch(session, per_day):
    """Branch `drift` (Berlin) with, per day, (waited pairs, of them within the range, pairs that did not wait)."""
    catalogue.create_branch(session, "drift", "Drift", "Europe/Berlin")
    catalogue.create_service(session, "drift", "A", "Accounts")
    branch = get_branch(session, "drift")
    service = _services(session, branch)["A"]
    for day, (waited, inside, idle) in zip(DRIFT_DAYS, per_day, strict=True):
        for k in range(waited + idle):
            wait = 0 if k >= waited else (10 if k < inside else 30)
            _ticket(session, branch, service, at(day, 9, 0, BERLIN) + timedelta(minutes=k), wait=wait,
                    estimate=(10, 6, 15))
    session.commit()


def _drift_lines(caplog):
    return [r for r in caplog.records if r.name == "queue_app.jobs.scheduler" and "at drift:" in r.getMessage()]


def test_the_daily_close_warns_after_three_days_outside_the_coverage_target(app, session, caplog):
    _drift_branch(session, [(20, 12, 0), (20, 13, 5), (20, 19, 0)])  # 0.60, 0.65, 0.95
    with caplog.at_level(logging.WARNING, logger="queue_app.jobs.scheduler"):
        scheduler.close_days(app, now=AFTER)
        scheduler.close_days(app, now=AFTER + timedelta(minutes=10))  # the next tick: once a day is enough
    [line] = _drift_lines(caplog)
    assert line.levelno == logging.WARNING
    assert line.getMessage() == \
        "estimate coverage drift at drift: 0.60, 0.65, 0.95 on 2026-10-20..2026-10-22 (target 0.70-0.90)"


@pytest.mark.parametrize("middle", [(20, 14, 0), (20, 18, 0), (19, 10, 6)],
                         ids=["0.70 is inside", "0.90 is inside", "19 waited are too few"])
def test_no_drift_warning_when_a_day_is_inside_the_target_or_too_thin(app, session, caplog, middle):
    _drift_branch(session, [(20, 12, 0), middle, (20, 19, 0)])
    with caplog.at_level(logging.WARNING, logger="queue_app.jobs.scheduler"):
        scheduler.close_days(app, now=AFTER)
    assert _drift_lines(caplog) == []


def test_the_accuracy_chart_draws_in_a_browser(session, seeded, server, chromium, tmp_path):
    from browser import open_page, save_screenshot
    from helpers import sign_in
    from playwright.sync_api import expect

    branch = get_branch(session, "demo")
    a = _services(session, branch)["A"]
    yesterday = numbering.local_day(datetime.now(TAIPEI), TAIPEI) - timedelta(days=1)
    for k, (estimate, wait) in enumerate(((2, 1), (4, 6), (8, 7), (8, 12), (15, 11), (25, 31), (70, 58))):
        _ticket(session, branch, a, at(yesterday, 9, 5 * k), wait=wait,
                estimate=(estimate, round(estimate * 0.6), round(estimate * 1.4)))
    session.commit()
    errors: list[str] = []
    manager = open_page(chromium, errors, viewport={"width": 1366, "height": 900})
    manager.on("console", lambda message: errors.append(f"console: {message.text}")
               if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    sign_in(manager, server.base, "manager@demo.test", seeded["password"])
    manager.goto(f"{server.base}/manage/branches/demo/dashboard#accuracy")
    expect(manager.locator("canvas#chart-accuracy")).to_have_attribute("data-rendered", "true")
    drawn = manager.evaluate("() => Chart.getChart('chart-accuracy').data.datasets.map(d => d.data.length)")
    assert drawn == [6, 6, 6, 2]  # p90 and p10 edges, mean per estimated minute, the diagonal
    expect(manager.locator("#accuracy-overall")).to_contain_text("Estimates judged: 7.")
    manager.locator("#accuracy").scroll_into_view_if_needed()
    save_screenshot(manager, tmp_path, "manager-dashboard-accuracy.png")
    assert errors == []
