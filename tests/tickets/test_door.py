"""The door sign for "I'm here" (/door/<slug>): today's code of the branch as a QR, for staff of the
branch only; 404 for an unknown branch, 403 (a page that says why) where remote tickets are off.

The page runs on the real clock, like the app: "today" is the branch's local day now.
"""
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from helpers import login_as, page_data

from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.tickets import numbering, remote_rules
from queue_app.tickets.door_pages import next_local_midnight

SECRET = "test-secret-key"  # TEST_CONFIG's SECRET_KEY
BASE = "http://kiosk.test"  # TEST_CONFIG's QUEUE_APP_BASE_URL


def _allow(app, slug="demo"):
    with app.app_context():
        catalogue.update_branch(db.session, slug, allow_remote_tickets=True)


def _todays_here_url(app, slug="demo"):
    with app.app_context():
        branch = catalogue.get_branch(db.session, slug)
        code = remote_rules.here_code(SECRET, branch.id, numbering.local_day(utcnow(), branch.zone))
    return f"{BASE}/here/{slug}/{code}"


def test_the_door_page_shows_todays_here_code_to_staff_of_the_branch(app, client, seeded):
    _allow(app)
    login_as(client, "staff1@demo.test")
    page = client.get("/door/demo")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.data.decode()
    here = _todays_here_url(app)
    assert f'data-here-url="{here}"' in html
    assert re.search(r'<svg class="qr"[^>]*aria-label="I(\'|&#39;)m here"', html)
    assert "Demo Branch" in html and "Joined from home? Scan to say you are here" in html
    assert "Sign out" not in html  # a device page: no navigation on the door or the printed sheet
    # The address works: it is the "I'm here" page of today's code.
    assert client.get(here.removeprefix(BASE)).status_code == 200
    # The tablet reloads after the branch's next local midnight, by the server's clock.
    data = page_data(page.data)
    assert data["reload_at_ms"] > data["server_time_ms"]
    assert data["reload_at_ms"] - data["server_time_ms"] <= (24 * 3600 + 60) * 1000


def test_the_door_page_is_for_staff_of_the_branch_only(app, client, seeded, north):
    _allow(app)
    _allow(app, "north")
    anonymous = client.get("/door/demo")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login_as(client, "staff1@demo.test")
    assert client.get("/door/north").status_code == 403  # another branch's code
    assert client.get("/door/nowhere").status_code == 404
    login_as(client, "admin@demo.test")
    assert client.get("/door/north").status_code == 200  # admins: every branch


def test_no_door_code_where_the_branch_does_not_take_remote_tickets(app, client, seeded):
    login_as(client, "manager@demo.test")
    refused = client.get("/door/demo")
    assert refused.status_code == 403
    html = refused.data.decode()
    assert "Demo Branch does not take tickets joined from home" in html and "/here/demo/" not in html
    assert "/door/demo" not in client.get("/manage/").data.decode()  # no link to it either
    _allow(app)
    assert 'href="/door/demo"' in client.get("/manage/").data.decode()
    assert 'href="/door/demo"' in client.get("/staff").data.decode()


def test_next_local_midnight_follows_the_branch_zone_and_dst():
    taipei = ZoneInfo("Asia/Taipei")
    now = datetime(2026, 3, 2, 15, 59, tzinfo=UTC)  # 23:59 in Taipei
    assert next_local_midnight(now, taipei) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert next_local_midnight(now + timedelta(minutes=1), taipei) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    # Santiago moves its clocks at midnight: on 2026-09-06 local midnight does not exist; the day
    # begins at the jump (04:00 UTC), and the code's day is the new one from then on.
    santiago = ZoneInfo("America/Santiago")
    start = next_local_midnight(datetime(2026, 9, 6, 2, 0, tzinfo=UTC), santiago)
    assert numbering.local_day(start, santiago).isoformat() == "2026-09-06"
    assert numbering.local_day(start - timedelta(seconds=1), santiago).isoformat() == "2026-09-05"
