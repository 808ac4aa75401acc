"""The manager dashboard: report numbers on a constructed history, the what-if simulation, the CSV
export, overrides and recompute through the page with CSRF, planning settings, and who may see it."""
import csv
import io
from datetime import date, timedelta

import numpy as np
import pytest
from helpers import MONDAY, PASSWORD, _walk_in_history, csrf_token, login_as, post_form, utc
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core.errors import Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.planning import plan as planning
from queue_app.planning import reports, what_if
from queue_app.planning.models import ArrivalForecast, StaffingPlan
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket, TicketEvent

DAY = date(2026, 3, 2)  # a Monday; the demo branch is in Asia/Taipei (UTC+8)


def taipei(hour, minute=0, day=DAY):
    return utc(day.year, day.month, day.day, hour - 8, minute)


def _ticket(session, branch, services, number, code, issued, *, called=None, finished=None, status="done",
            priority="normal", effective=None, counter=None, day=DAY):
    ticket = Ticket(branch_id=branch.id, service_id=services[code].id, local_date=day, prefix=code, number=number,
                    label=f"{code}{number:03d}", status=status, priority=priority, effective_at=effective or issued,
                    sort_key=effective or issued, issued_at=issued, called_at=called, started_at=called,
                    finished_at=finished, counter_id=counter.id if counter else None,
                    token_hash=f"report-{day}-{number}")
    session.add(ticket)
    session.flush()
    return ticket


@pytest.fixture
def history(session):
    """Five tickets on DAY with known answers, a forecast for 10:00, and one ticket the day before."""
    branch = get_branch(session, "demo")
    services = {s.code: s for s in session.scalars(select(Service).where(Service.branch_id == branch.id))}
    counters = {c.name: c for c in session.scalars(select(Counter).where(Counter.branch_id == branch.id))}
    one, two = counters["Counter 1"], counters["Counter 2"]
    # 10:00-10:30
    _ticket(session, branch, services, 1, "A", taipei(10, 5), called=taipei(10, 10), finished=taipei(10, 20), counter=one)
    _ticket(session, branch, services, 2, "A", taipei(10, 10), called=taipei(10, 25), finished=taipei(10, 30), counter=two)
    left = _ticket(session, branch, services, 3, "B", taipei(10, 20), status="cancelled")
    session.add(TicketEvent(ticket_id=left.id, branch_id=branch.id, type="left", at=taipei(10, 50), data={}))
    # A booking for 10:30 checked in at 10:15: its wait counts from 10:30.
    _ticket(session, branch, services, 4, "B", taipei(10, 15), called=taipei(10, 35), finished=taipei(10, 45),
            priority="appointment", effective=taipei(10, 30), counter=one)
    # 10:30-11:00
    _ticket(session, branch, services, 5, "A", taipei(10, 40), called=taipei(10, 48), finished=taipei(10, 50),
            status="no_show", counter=two)
    # The day before: outside the range.
    _ticket(session, branch, services, 6, "A", taipei(10, 5, DAY - timedelta(days=1)), called=taipei(11, 0, DAY - timedelta(days=1)),
            finished=taipei(11, 5, DAY - timedelta(days=1)), counter=one, day=DAY - timedelta(days=1))
    for code, mean, p10, p90, booked in (("A", 2.0, 1.0, 3.0, 0.5), ("B", 1.0, 0.5, 2.0, 0.0)):
        session.add(ArrivalForecast(branch_id=branch.id, service_id=services[code].id, local_date=DAY,
                                    starts_at=taipei(10), minutes=30, walk_in_mean=mean, walk_in_p10=p10,
                                    walk_in_p90=p90, booking_mean=booked, computed_at=taipei(8)))
    session.commit()
    return branch


def test_report_numbers_match_a_constructed_history(session, history):
    stats = reports.branch_stats(session, history, DAY, DAY, now=taipei(20))
    by_time = {row["local"][-5:]: row for row in stats.intervals}
    assert set(by_time) == {"10:00", "10:30"}
    first = by_time["10:00"]
    assert (first["arrivals"], first["walk_ins"], first["called"], first["served"], first["abandoned"]) == (4, 3, 3, 3, 1)
    assert first["abandonment"] == 0.25
    assert first["avg_wait"] == pytest.approx(25 / 3, abs=0.01)  # 5, 15 and the booking's 5
    assert first["p90_wait"] == pytest.approx(np.percentile([5, 15, 5], 90))
    assert first["service_level"] == 0.5  # 2 within 10 min, of 3 called and 1 who left
    assert (first["forecast"], first["forecast_p10"], first["forecast_p90"]) == (3.5, 2.0, 5.5)
    second = by_time["10:30"]
    assert (second["arrivals"], second["served"], second["no_shows"], second["avg_wait"], second["service_level"]) == \
        (1, 0, 1, 8.0, 1.0)
    assert second["forecast"] is None

    services = {row["code"]: row for row in stats.services}
    assert (services["A"]["arrivals"], services["A"]["avg_wait"], services["A"]["service_level"]) == \
        (3, pytest.approx(28 / 3, abs=0.01), pytest.approx(2 / 3, abs=1e-4))
    assert (services["B"]["arrivals"], services["B"]["abandoned"], services["B"]["service_level"]) == (2, 1, 0.5)
    counters = {row["name"]: row for row in stats.counters}
    assert (counters["Counter 1"]["called"], counters["Counter 1"]["avg_wait"], counters["Counter 1"]["avg_visit"],
            counters["Counter 1"]["service_level"]) == (2, 5.0, 10.0, 1.0)
    assert (counters["Counter 2"]["called"], counters["Counter 2"]["served"], counters["Counter 2"]["no_shows"],
            counters["Counter 2"]["avg_wait"], counters["Counter 2"]["service_level"]) == (2, 1, 1, 11.5, 0.5)
    assert "Counter 3" not in counters
    total = stats.total
    assert (total["arrivals"], total["served"], total["no_shows"], total["abandoned"]) == (5, 3, 1, 1)
    assert (total["avg_wait"], total["service_level"]) == (8.25, 0.6)
    assert [d["arrivals"] for d in stats.days] == [5]
    week = reports.branch_stats(session, history, DAY - timedelta(days=1), DAY, now=taipei(20))
    assert [d["arrivals"] for d in week.days] == [1, 5] and week.total["arrivals"] == 6


def test_a_ticket_still_waiting_past_the_target_is_a_miss_already(session, history):
    services = {s.code: s for s in session.scalars(select(Service).where(Service.branch_id == history.id))}
    _ticket(session, history, services, 7, "C", taipei(10, 50), status="waiting")
    _ticket(session, history, services, 8, "C", taipei(10, 58), status="waiting")
    session.commit()
    stats = reports.branch_stats(session, history, DAY, DAY, now=taipei(11, 5))  # 15 and 7 minutes waiting
    second = next(r for r in stats.intervals if r["local"].endswith("10:30"))
    assert (second["arrivals"], second["service_level"]) == (3, 0.5)  # 1 hit, 1 miss, 1 undecided


def test_report_range_is_checked():
    today = date(2026, 3, 9)
    assert reports.parse_range(None, None, today) == (date(2026, 3, 3), today)
    for first, last in (("2026-03-09", "2026-03-01"), ("yesterday", None), ("2025-01-01", "2026-03-09"),
                        (None, "0001-01-02")):
        with pytest.raises(Invalid):
            reports.parse_range(first, last, today)


# --- what-if ----------------------------------------------------------------------------------------------

def _day(counters: int, arrivals=(6.0, 3.0), intervals=12):
    start = utc(2026, 3, 2, 1, 0)
    return [what_if.Interval(start + timedelta(minutes=30 * k), counters, counters, {1: arrivals[0], 2: arrivals[1]})
            for k in range(intervals)]


SAMPLES = {1: np.array([4.0, 6.0, 8.0, 12.0]), 2: np.array([10.0, 15.0, 20.0])}


def _mean_wait(result):
    waits = [(r["mean_wait"] or 0) * r["arrivals"] for r in result]
    return sum(waits) / sum(r["arrivals"] for r in result)


@pytest.mark.parametrize("patience_rate", [0.0, 0.05])
def test_what_if_more_counters_shorter_waits(patience_rate):
    results = [what_if.simulate(_day(n), 30, SAMPLES, patience_rate, 10, replications=100, seed=7) for n in (2, 3, 4, 5)]
    means = [_mean_wait(r) for r in results]
    assert means == sorted(means, reverse=True) and means[0] > means[-1] * 3
    levels = [np.mean([r["service_level"] for r in result]) for result in results]
    assert levels == sorted(levels)
    # The same simulated customers arrive whatever the counters (common random numbers).
    assert [r["arrivals"] for r in results[0]] == [r["arrivals"] for r in results[-1]]


def test_what_if_is_deterministic_for_a_seed():
    once = what_if.simulate(_day(3), 30, SAMPLES, 0.02, 10, replications=50, seed=11)
    again = what_if.simulate(_day(3), 30, SAMPLES, 0.02, 10, replications=50, seed=11)
    other = what_if.simulate(_day(3), 30, SAMPLES, 0.02, 10, replications=50, seed=12)
    assert once == again and once != other


def test_what_if_with_no_counter_serves_nobody_until_counters_open():
    day = _day(2, intervals=4)
    day[0].counters = 0
    result = what_if.simulate(day, 30, SAMPLES, 0.0, 10, replications=30, seed=1)
    assert result[0]["mean_wait"] > 10 and result[0]["service_level"] < 0.2  # they wait for 10:30
    closed = _day(0, intervals=2)
    assert all(r["mean_wait"] is None for r in what_if.simulate(closed, 30, SAMPLES, 0.0, 10, replications=5))


def test_what_if_on_the_plan_with_offsets_and_per_interval_counters(session):
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, DAY)
    planning.plan_branch(session, branch, MONDAY)
    plans = planning.plan_of_day(session, branch, DAY)
    fewer = what_if.what_if(session, branch, DAY, offset=-1, seed=3, now=MONDAY)
    more = what_if.what_if(session, branch, DAY, offset=1, seed=3, now=MONDAY)
    assert len(more["intervals"]) == len(plans)
    assert [r["plan_mean_wait"] for r in fewer["intervals"]] == [r["plan_mean_wait"] for r in more["intervals"]]
    assert _mean_wait(fewer["intervals"]) > _mean_wait(more["intervals"])
    assert more["counter_hours"] > more["plan_counter_hours"] > fewer["counter_hours"]
    by_start = what_if.what_if(session, branch, DAY, counters={plans[2].starts_at.isoformat(): 9, "0": 0},
                               seed=3, now=MONDAY)
    assert [r["counters"] for r in by_start["intervals"][:3]] == [0, plans[1].counters, 9]
    for bad in ({"offset": "many"}, {"offset": 1.5}, {"offset": True}, {"counters": {"99": 1}},
                {"counters": {"0": -1}}, {"counters": {"2020-01-01T00:00:00+00:00": 1}}, {"counters": [1, 2]},
                {"counters": "3"}, {"replications": 0}, {"seed": -1}):
        with pytest.raises(Invalid):
            what_if.what_if(session, branch, DAY, now=MONDAY, **bad)
    with pytest.raises(NotFound):
        what_if.what_if(session, branch, DAY + timedelta(days=60), now=MONDAY)


# --- pages ------------------------------------------------------------------------------------------------

def _today(session):
    return numbering.local_day(utcnow(), get_branch(session, "demo").zone)


@pytest.fixture
def planned(session):
    """History up to today and a plan for the real horizon (the page plans from the real clock)."""
    branch = get_branch(session, "demo")
    _walk_in_history(session, branch, _today(session))
    planning.plan_branch(session, branch)
    session.commit()
    return branch


def test_dashboard_page_shows_today_stats_plan_and_settings(client, session, history):
    login_as(client, "manager@demo.test")
    page = client.get("/manage/branches/demo/dashboard?from=2026-03-01&to=2026-03-02")
    assert page.status_code == 200
    html = page.data.decode()
    for marker in ('id="chart-today"', 'id="chart-arrivals"', 'id="chart-waits"', 'id="chart-services"',
                   'id="chart-counters"', 'id="chart-days"', 'id="page-data"', 'id="live-waiting"', "vendor/chart.umd.min.js",
                   'id="settings"', "stats.csv?from=2026-03-01&amp;to=2026-03-02"):
        assert marker in html
    assert "<script>" not in html  # nothing inline: the page data is JSON, the code is a file
    bad = client.get("/manage/branches/demo/dashboard?from=2026-03-05&to=2026-03-01")
    assert bad.status_code == 200 and "The range ends before it starts." in bad.data.decode()
    assert b"Dashboard" in client.get("/manage/").data
    zh = client.get("/manage/branches/demo/dashboard?lang=zh_Hant")
    assert zh.status_code == 200
    sunday = next(_today(session) + timedelta(days=n) for n in range(1, 8)
                  if (_today(session) + timedelta(days=n)).weekday() == 6)  # the demo branch opens Monday to Saturday
    closed = client.get(f"/manage/branches/demo/dashboard?day={sunday.isoformat()}").data.decode()
    assert "The branch is closed on this day." in closed and f'<option value="{sunday}" selected>' in closed


def test_csv_export_has_the_report_numbers(client, session, history):
    login_as(client, "manager@demo.test")
    response = client.get("/manage/branches/demo/stats.csv?from=2026-03-02&to=2026-03-02")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="stats-demo-2026-03-02-2026-03-02.csv"'
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    interval = next(r for r in rows if r["by"] == "interval" and r["key"] == "2026-03-02 10:00")
    assert (interval["arrivals"], interval["abandoned"], interval["service_level"], interval["forecast"]) == \
        ("4", "1", "0.5", "3.5")
    assert {(r["by"], r["key"]) for r in rows if r["by"] in ("service", "counter")} >= {("service", "A"), ("service", "B")}
    counter = next(r for r in rows if r["by"] == "counter" and r["name"] == "Counter 2")
    assert (counter["called"], counter["avg_wait"]) == ("2", "11.5")
    total = next(r for r in rows if r["by"] == "total")
    assert (total["key"], total["arrivals"], total["avg_wait"], total["service_level"]) == \
        ("2026-03-02..2026-03-02", "5", "8.25", "0.6")
    refused = client.get("/manage/branches/demo/stats.csv?from=2026-13-01")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "invalid_field"


def test_overrides_and_recompute_through_the_page_with_csrf(client, session, planned):
    login_as(client, "manager@demo.test")
    page = client.get("/manage/branches/demo/dashboard").data.decode()
    assert 'id="plan-grid"' in page
    plan = planning.plan_of_day(session, planned, min(reports.planned_days(session, planned, _today(session),
                                                                         _today(session) + timedelta(days=14))))[1]
    starts_at, day = plan.starts_at.isoformat(), plan.local_date.isoformat()
    assert f'value="{starts_at}"' in page

    # Without the CSRF token: refused, nothing changes.
    assert client.post("/manage/branches/demo/plan/override",
                       data={"starts_at": starts_at, "counters": "7", "day": day}).status_code == 400
    assert client.post("/manage/branches/demo/plan/recompute").status_code == 400

    response = post_form(client, "/manage/branches/demo/plan/override",
                         {"starts_at": starts_at, "counters": "7", "booking_slots": "1", "day": day, "action": "save"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"dashboard?day={day}#plan")
    session.rollback()  # end the read snapshot: see what the requests committed
    row = session.scalar(select(StaffingPlan).where(StaffingPlan.starts_at == plan.starts_at))
    assert (row.counters_override, row.booking_slots_override) == (7, 1)
    shown = client.get(response.headers["Location"]).data.decode()
    assert "7 counters, 1 booking slots" in shown and 'class="overridden"' in shown

    response = post_form(client, "/manage/branches/demo/plan/recompute", {"day": day})
    assert response.status_code == 302 and "Overrides were kept" in client.get(response.headers["Location"]).data.decode()
    session.rollback()  # end the read snapshot: see what the requests committed
    row = session.scalar(select(StaffingPlan).where(StaffingPlan.starts_at == plan.starts_at))
    assert (row.counters_override, row.booking_slots_override) == (7, 1)

    for data, message in (({"counters": "lots"}, "Enter whole numbers from 0 to 500."),
                          ({"counters": "501"}, "Enter whole numbers from 0 to 500."),
                          ({}, "Enter counters or booking slots, or clear the override.")):
        response = post_form(client, "/manage/branches/demo/plan/override", {"starts_at": starts_at, "day": day, **data})
        assert response.status_code == 302 and message in client.get(response.headers["Location"]).data.decode()
    for bad_start in ("2020-01-01T00:00:00+00:00", "not a time", "2026-03-02T10:00:00"):
        response = post_form(client, "/manage/branches/demo/plan/override", {"starts_at": bad_start, "counters": "1"})
        assert response.status_code == 302 and "not in the plan" in client.get(response.headers["Location"]).data.decode()
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.scalar(select(StaffingPlan.counters_override).where(StaffingPlan.starts_at == plan.starts_at)) == 7

    response = post_form(client, "/manage/branches/demo/plan/override", {"starts_at": starts_at, "action": "clear"})
    assert response.status_code == 302
    session.rollback()  # end the read snapshot: see what the requests committed
    row = session.scalar(select(StaffingPlan).where(StaffingPlan.starts_at == plan.starts_at))
    assert (row.counters_override, row.booking_slots_override) == (None, None)


def test_what_if_endpoint_answers_json_and_refuses_bad_input_with_4xx(client, session, planned):
    login_as(client, "manager@demo.test")
    token = csrf_token(client.get("/manage/branches/demo/dashboard").data)
    day = min(reports.planned_days(session, planned, _today(session), _today(session) + timedelta(days=14)))
    url = "/manage/branches/demo/what-if"
    headers = {"X-CSRFToken": token}
    result = client.post(url, json={"date": day.isoformat(), "offset": 1, "seed": 5}, headers=headers)
    assert result.status_code == 200, result.data
    intervals = result.json["intervals"]
    assert intervals and all(r["counters"] == r["planned"] + 1 for r in intervals)
    assert client.post(url, json={"date": day.isoformat(), "offset": 1, "seed": 5}, headers=headers).json == result.json
    for body, status, code in (({"date": day.isoformat(), "offset": "x"}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "counters": {"0": 1000}}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "counters": {"x": 1}}, 422, "invalid_field"),
                               ({"date": "2020-01-01"}, 422, "invalid_field"),
                               ({"date": "soon"}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "replications": "many"}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "seed": "x"}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "offset": None}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "counters": {"0": None}}, 422, "invalid_field"),
                               ({"date": day.isoformat(), "counters": {"0": [1]}}, 422, "invalid_field"),
                               ({"date": ["2026-01-01"]}, 422, "invalid_field"),
                               ([1, 2], 400, "malformed_json")):
        response = client.post(url, json=body, headers=headers)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
    garbage = client.post(url, data="{not json", headers={**headers, "Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json["error"]["code"] == "malformed_json"
    no_csrf = client.post(url, json={"date": day.isoformat()})
    assert no_csrf.status_code == 400 and no_csrf.json["error"]["code"] == "csrf_failed"


def test_planning_settings_form_saves_valid_rules_and_explains_bad_ones(client, session):
    login_as(client, "manager@demo.test")
    values = {"target": "0.9", "target_wait_minutes": "5", "max_abandon": "0.03", "walk_in_reserve": "0.25",
              "interval_minutes": "15"}
    response = post_form(client, "/manage/branches/demo/planning-rules", values)
    assert response.status_code == 302
    branch = get_branch(session, "demo")
    session.refresh(branch)
    rules = planning.planning_rules(branch)
    assert (rules.target, rules.target_wait_minutes, rules.max_abandon, rules.walk_in_reserve,
            rules.interval_minutes) == (0.9, 5, 0.03, 0.25, 15)
    refused = post_form(client, "/manage/branches/demo/planning-rules", {**values, "target": "2", "interval_minutes": "20"})
    assert refused.status_code == 400
    html = refused.data.decode()
    assert "Between 0.05 and 0.99." in html and "15, 30 or 60." in html and 'aria-invalid="true"' in html
    session.refresh(branch)
    assert planning.planning_rules(branch).target == 0.9
    assert post_form(client, "/manage/branches/demo/planning-rules", {**values, "target": ""}).status_code == 400
    chinese = post_form(client, "/manage/branches/demo/planning-rules?lang=zh_Hant", {**values, "target": "x"})
    assert chinese.status_code == 400 and "需要數字" in chinese.data.decode()


def test_live_endpoint_follows_the_queue(client, api, session):
    login_as(client, "manager@demo.test")
    before = client.get("/manage/branches/demo/dashboard/live")
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    api.issue("A")
    api.issue("B")
    after = client.get("/manage/branches/demo/dashboard/live").json
    assert after["waiting"] == before.json["waiting"] + 2 and after["arrivals"] == before.json["arrivals"] + 2
    assert after["open_counters"] == 3 and after["target_wait_minutes"] == 10


@pytest.mark.parametrize("path", ["/manage/branches/demo/dashboard", "/manage/branches/demo/dashboard/live",
                                  "/manage/branches/demo/stats.csv"])
def test_only_managers_of_the_branch_and_admins_see_the_dashboard(client, session, path):
    catalogue.create_branch(session, "north", "North Branch", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", PASSWORD, "manager", ["north"])
    assert client.get(path).status_code in (302, 401)  # to the login page
    for email, status in (("staff1@demo.test", 403), ("north.manager@demo.test", 403), ("manager@demo.test", 200),
                          ("admin@demo.test", 200)):
        browser = client.application.test_client()  # its own cookies: one signed-in person each
        login_as(browser, email)
        assert browser.get(path).status_code == status, email
    assert client.get("/manage/branches/nowhere/dashboard").status_code in (302, 401)


def test_writes_are_refused_to_staff_and_other_branches(client, session, planned):
    catalogue.create_branch(session, "north", "North Branch", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", PASSWORD, "manager", ["north"])
    plan = session.scalars(select(StaffingPlan)).first()
    for email in ("staff1@demo.test", "north.manager@demo.test"):
        fresh = client.application.test_client()
        login_as(fresh, email)
        token = csrf_token(fresh.get("/staff").data)
        for url, data in (("/manage/branches/demo/plan/recompute", {}),
                          ("/manage/branches/demo/plan/override", {"starts_at": plan.starts_at.isoformat(), "counters": "9"}),
                          ("/manage/branches/demo/planning-rules", {"target": "0.5"})):
            assert fresh.post(url, data={**data, "csrf_token": token}).status_code == 403
        assert fresh.post("/manage/branches/demo/what-if", json={}, headers={"X-CSRFToken": token}).status_code == 403
    session.rollback()  # end the read snapshot: see what the requests committed
    assert session.get(StaffingPlan, plan.id).counters_override is None


def test_a_new_interval_replans_on_the_new_grid_and_other_settings_keep_the_plan(session, planned):
    from queue_app.planning import settings as planning_settings

    today = _today(session)
    day = min(reports.planned_days(session, planned, today, today + timedelta(days=14)))
    half_hours = planning.plan_of_day(session, planned, day)
    planning.set_override(session, planned, half_hours[1].starts_at, counters=5)
    rules, regridded = planning_settings.update_planning_rules(session, planned, {"target": "0.85"})
    assert (rules.target, regridded) == (0.85, False)
    assert planning.plan_of_day(session, planned, day)[1].counters_override == 5

    rules, regridded = planning_settings.update_planning_rules(session, planned, {"interval_minutes": "15"})
    assert (rules.interval_minutes, regridded) == (15, True)
    quarters = planning.plan_of_day(session, planned, day)
    assert len(quarters) == 2 * len(half_hours) and {p.minutes for p in quarters} == {15}
    assert all(p.counters_override is None for p in quarters)
    forecast_minutes = set(session.scalars(select(ArrivalForecast.minutes).where(ArrivalForecast.local_date == day)))
    assert forecast_minutes == {15}


def test_stats_api_gives_the_same_numbers_to_managers_of_the_branch(api, session, history):
    response = api.call("GET", "/branches/demo/stats?from=2026-03-02&to=2026-03-02", "manager@demo.test")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["from"], body["to"], body["target_wait_minutes"]) == ("2026-03-02", "2026-03-02", 10)
    assert (body["total"]["arrivals"], body["total"]["avg_wait"], body["total"]["service_level"]) == (5, 8.25, 0.6)
    first = next(r for r in body["intervals"] if r["local"] == "2026-03-02 10:00")
    assert (first["arrivals"], first["abandoned"], first["forecast"]) == (4, 1, 3.5)
    assert {r["code"] for r in body["services"]} == {"A", "B"}
    assert api.call("GET", "/branches/demo/stats?from=2026-03-02", "staff1@demo.test").status_code == 403
    for query, code in (("from=2026-03-05&to=2026-03-01", "invalid_field"), ("from=2025-01-01&to=2026-03-01", "invalid_field"),
                        ("from=soon", "validation_failed")):
        refused = api.call("GET", f"/branches/demo/stats?{query}", "manager@demo.test")
        assert (refused.status_code, refused.json["error"]["code"]) == (422, code), query
    openapi = api.call("GET", "/openapi.json").json
    assert "/api/v1/branches/{slug}/stats" in openapi["paths"]
