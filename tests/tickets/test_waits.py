"""Live waits of every branch: the public feed (GET /api/v1/waits) with its cache and CORS headers,
the branch list (/) in each language, the embeddable widget's page and its framing, and branch
coordinates (API and manage form). Real SQLite, the real app; the figures are the estimator's own."""
from datetime import datetime, timedelta, timezone

from helpers import TAIPEI, WEEK, csrf_token, login_as
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db
from queue_app.demo.traffic import open_around_the_clock
from queue_app.tickets import branch_waits, queueing

ADMIN = "admin@demo.test"
PHONE_NUMBER = "+886912345678"


def _closed_for_three_days(session, slug="north"):
    """A branch open 09:00-17:00 every day but closed today and the next two days (Taipei time)."""
    today = datetime.now(timezone.utc).astimezone(TAIPEI).date()
    catalogue.create_branch(session, slug, "North Branch", "Asia/Taipei",
                            opening_hours={d: [["09:00", "17:00"]] for d in WEEK},
                            closed_dates=[(today + timedelta(days=n)).isoformat() for n in range(3)])
    catalogue.create_service(session, slug, "A", "Accounts")
    catalogue.create_counter(session, slug, "North 1", ["A"], state="closed")  # staff gone home
    return today


def _two_branches(session):
    """`demo` open around the clock, with coordinates, remote tickets and a service no counter
    serves (D); `north` closed (see _closed_for_three_days), no coordinates, kiosk tickets only."""
    open_around_the_clock(session, "demo")
    catalogue.update_branch(session, "demo", allow_remote_tickets=True, latitude=25.033, longitude=121.5654)
    catalogue.create_service(session, "demo", "D", "Safe deposit boxes")
    return _closed_for_three_days(session)


def test_the_feed_gives_every_branch_open_or_when_it_opens_and_each_services_wait(client, session, seeded):
    today = _two_branches(session)
    issued = queueing.issue_ticket(session, "demo", "A", phone=PHONE_NUMBER, email="mei@example.test")

    response = client.get("/api/v1/waits")
    assert response.status_code == 200, response.json
    demo, north = response.json["branches"]  # by slug

    assert demo["slug"] == "demo" and demo["name"] == "Demo Branch" and demo["timezone"] == "Asia/Taipei"
    assert demo["open_now"] is True and demo["opens_at"] is None
    assert (demo["latitude"], demo["longitude"]) == (25.033, 121.5654)
    assert demo["remote_tickets"] is True
    assert demo["links"]["join"] == "http://kiosk.test/j/demo"
    assert demo["links"]["book"] == "http://kiosk.test/b/demo"
    assert demo["links"]["embed"] == "http://kiosk.test/embed/waits/demo"
    services = {s["code"]: s for s in demo["services"]}
    assert list(services) == ["A", "B", "C", "D"]
    accounts = services["A"]
    assert accounts["name"] == "Accounts and deposits" and accounts["names"]["zh_Hant"] == "帳戶與存款"
    assert accounts["state"] == "waiting"
    assert 0 <= accounts["low"] <= accounts["minutes"] <= accounts["high"]
    # No counter serves D, today or later: said so, without a figure.
    assert services["D"]["state"] == "no_counter"
    assert services["D"]["minutes"] is None and services["D"]["opens_at"] is None

    assert north["slug"] == "north" and north["open_now"] is False
    opens = datetime.fromisoformat(north["opens_at"])
    # 09:00 Taipei on the first day after the closed ones (a day later if the test crossed midnight).
    assert opens.strftime("%H:%M%z") == "09:00+0800"
    assert opens.date() in (today + timedelta(days=3), today + timedelta(days=4))
    assert north["latitude"] is None and north["longitude"] is None
    assert north["remote_tickets"] is False and north["links"]["join"] is None
    assert [(s["code"], s["state"], s["minutes"]) for s in north["services"]] == [("A", "closed", None)]

    # Numbers, hours and places only: nothing about the ticket or its holder.
    text = response.get_data(as_text=True)
    for personal in (PHONE_NUMBER, "912345678", "mei@example.test", issued.token, issued.ticket.label):
        assert personal not in text
    keys = set()

    def collect(value):
        if isinstance(value, dict):
            keys.update(value)
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(response.json)
    assert not keys & {"phone", "email", "token", "label", "customer", "customer_id", "ticket", "tickets"}

    one = client.get("/api/v1/waits/north")
    assert one.status_code == 200 and one.json["slug"] == "north" and one.json["opens_at"] == north["opens_at"]
    missing = client.get("/api/v1/waits/nowhere")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "branch_not_found"


def test_the_feed_is_cacheable_for_15_s_conditional_and_open_to_other_sites(client, seeded):
    first = client.get("/api/v1/waits", headers={"Origin": "https://bank.example"})
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "public, max-age=15"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    etag = first.headers["ETag"]
    assert etag

    again = client.get("/api/v1/waits", headers={"Origin": "https://bank.example", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == "public, max-age=15"
    assert again.headers["Access-Control-Allow-Origin"] == "*"

    # The preflight a page's own request headers trigger.
    preflight = client.options("/api/v1/waits", headers={
        "Origin": "https://bank.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "if-none-match" in preflight.headers["Access-Control-Allow-Headers"].lower()
    one = client.options("/api/v1/waits/demo", headers={
        "Origin": "https://bank.example", "Access-Control-Request-Method": "GET"})
    assert one.status_code == 200 and one.headers["Access-Control-Allow-Origin"] == "*"
    # Only reading: nothing can be posted to it.
    assert client.post("/api/v1/waits", json={}).status_code == 405

    spec = client.get("/api/v1/openapi.json").json
    assert set(spec["paths"]["/api/v1/waits"]) >= {"get"}
    assert "/api/v1/waits/{slug}" in spec["paths"]
    assert "BranchWaits" in spec["components"]["schemas"]


def test_the_figures_are_kept_15_seconds_per_branch(session, seeded):
    open_around_the_clock(session, "demo")
    demo = session.scalar(select(Branch).where(Branch.slug == "demo"))
    start = datetime.now(timezone.utc).replace(microsecond=0)
    first = branch_waits.waits(session, [demo], now=start)[0]
    for _ in range(6):
        queueing.issue_ticket(session, "demo", "B", now=start + timedelta(seconds=1))
    # Within 15 s the kept figures answer, however the queue changed...
    assert branch_waits.waits(session, [demo], now=start + timedelta(seconds=14))[0] is first
    # ...then they are made again, with the new tickets in them.
    fresh = branch_waits.waits(session, [demo], now=start + timedelta(seconds=15))[0]
    assert fresh is not first
    loans = {s["code"]: s for s in fresh["services"]}["B"]
    assert loans["minutes"] > {s["code"]: s for s in first["services"]}["B"]["minutes"]


def test_the_branch_list_shows_waits_and_join_only_where_phones_may_join(client, session, seeded):
    _two_branches(session)
    queueing.issue_ticket(session, "demo", "A", phone=PHONE_NUMBER)
    names = {"en": "Accounts and deposits", "zh_Hant": "帳戶與存款", "zh_Hans": "账户与存款"}
    for language, lang_attr in (("en", "en"), ("zh_Hant", "zh-Hant"), ("zh_Hans", "zh-Hans")):
        response = client.get(f"/?lang={language}")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert f'<html lang="{lang_attr}">' in html
        assert names[language] in html and "North Branch" in html
        assert f'href="/j/demo?lang={language}"' in html  # demo takes tickets from phones
        assert "/j/north" not in html  # north only at its kiosks
        assert f'href="/b/demo?lang={language}"' in html and f'href="/display/north?lang={language}"' in html
        assert 'data-lat="25.033" data-lon="121.5654"' in html
        assert PHONE_NUMBER not in html and "912345678" not in html
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Open now" in english and "Opens " in english
    assert "your location is never sent to us" in english
    # Shortest wait first: the open branch before the closed one.
    assert english.index("Demo Branch") < english.index("North Branch")


def test_the_widget_page_may_be_framed_by_other_sites_and_other_pages_may_not(client, session, seeded):
    _two_branches(session)
    widget = client.get("/embed/waits/demo?lang=zh_Hant")
    assert widget.status_code == 200
    policy = widget.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in policy and "script-src 'self'" in policy
    assert "X-Frame-Options" not in widget.headers
    assert widget.headers["Cache-Control"] == "public, max-age=15"
    assert "Set-Cookie" not in widget.headers  # shared caches may keep it
    html = widget.get_data(as_text=True)
    assert "帳戶與存款" in html and 'href="/j/demo?lang=zh_Hant"' in html and 'target="_blank"' in html
    assert "/j/north" not in client.get("/embed/waits/north").get_data(as_text=True)
    assert client.get("/embed/waits/nowhere").status_code == 404
    for page in ("/", "/b/demo"):
        headers = client.get(page).headers
        assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_coordinates_are_checked_by_the_api_422_never_500(api, seeded):
    def patch(body):
        return api.call("PATCH", "/branches/demo", ADMIN, json=body)

    for body in ({"latitude": 90.5, "longitude": 10}, {"latitude": 10, "longitude": -180.01},
                 {"latitude": "north", "longitude": 10}, {"latitude": True, "longitude": 10}):
        refused = patch(body)
        assert refused.status_code == 422, (body, refused.json)
    nan = api.call("PATCH", "/branches/demo", ADMIN, data='{"latitude": NaN, "longitude": 1}',
                   content_type="application/json")
    assert nan.status_code in (400, 422), nan.json
    # Both or neither: one alone is refused, naming the missing one.
    half = patch({"latitude": 25.0})
    assert half.status_code == 422 and "longitude" in half.json["error"]["fields"]

    saved = patch({"latitude": -33.8688, "longitude": 151.2093})
    assert saved.status_code == 200
    assert (saved.json["latitude"], saved.json["longitude"]) == (-33.8688, 151.2093)
    edges = patch({"latitude": 90, "longitude": -180})
    assert edges.status_code == 200
    cleared = patch({"latitude": None, "longitude": None})
    assert cleared.status_code == 200 and cleared.json["latitude"] is None and cleared.json["longitude"] is None
    assert "latitude" in api.call("GET", "/branches/demo").json


def test_coordinates_are_checked_on_the_branch_form(client, app, seeded):
    login_as(client, ADMIN)

    def post(**coordinates):
        page = client.get("/manage/branches/demo/edit")
        assert page.status_code == 200 and b'name="latitude"' in page.data
        form = {"csrf_token": csrf_token(page.data), "name": "Demo Branch", "timezone": "Asia/Taipei",
                "opening_hours": "mon 09:00-17:00", "closed_dates": "", "phone": "",
                "announcement_languages": "", **coordinates}
        return client.post("/manage/branches/demo/edit", data=form)

    out_of_range = post(latitude="95", longitude="121.5")
    assert out_of_range.status_code == 400 and b"From -90 to 90 degrees." in out_of_range.data
    assert post(latitude="25", longitude="200").status_code == 400
    assert post(latitude="north", longitude="121.5").status_code == 400
    assert post(latitude="nan", longitude="121.5").status_code == 400
    half = post(latitude="25.03", longitude="")
    assert half.status_code == 400 and b"give both latitude and longitude" in half.data
    assert post(latitude="25.0330", longitude="121.5654").status_code == 302
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.slug == "demo"))
        assert (branch.latitude, branch.longitude) == (25.033, 121.5654)
    assert post(latitude="", longitude="").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Branch.latitude).where(Branch.slug == "demo")) is None

