"""Kiosk devices on the server: pairing codes from the manager page, pairing, heartbeats, the device cookie."""
import re
from datetime import timedelta

from helpers import PASSWORD, login_as, make_app, post_form
from sqlalchemy import select

from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.core.security import token_hash
from queue_app.kiosks import operations as kiosks
from queue_app.kiosks.models import KioskDevice, KioskPairingCode
from queue_app.tickets.estimate_text import estimate_text

PAGE = "/manage/branches/demo/kiosks"


def new_code(client, name="Lobby left") -> str:
    """A manager creates a pairing code on the manager page; it is shown once."""
    response = post_form(client, PAGE, {"name": name})
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    page = client.get(PAGE).data.decode()
    code = re.search(r'id="pairing-code">([^<]+)<', page).group(1)
    assert f"queue-kiosk pair {code} --server http://kiosk.test" in page
    assert 'id="pairing-code"' not in client.get(PAGE).data.decode()  # not shown again
    return code


def pair(client, code):
    return client.post("/api/v1/kiosk/pair", json={"code": code})


def heartbeat(client, token, **body):
    body.setdefault("printer", {"state": "ok"})
    return client.post("/api/v1/kiosk/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_pairing_code_pairs_one_device_which_the_manager_then_sees_by_name(client, api, session):
    login_as(client, "manager@demo.test")
    code = new_code(client, "Lobby left")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}", code)

    paired = pair(client, code.lower().replace("-", " "))  # typed sloppily: case and separators do not matter
    assert paired.status_code == 201, paired.json
    token = paired.json["token"]
    assert paired.json["device_name"] == "Lobby left" and paired.json["branch"] == "demo"
    assert paired.json["kiosk_path"] == "/kiosk/demo" and paired.json["texts"]["out_of_order"] == "Out of order"

    # The token is a working device token: the API and the kiosk page accept it.
    ticket = client.post("/api/v1/branches/demo/tickets", json={"service": "A"}, headers={"Authorization": f"Bearer {token}"})
    assert ticket.status_code == 201
    kiosk = client.application.test_client()
    assert kiosk.get(f"/kiosk/demo?device={token}").status_code == 302
    assert kiosk.get("/kiosk/demo").status_code == 200

    again = pair(client, code)
    assert again.status_code == 409 and again.json["error"]["code"] == "pairing_code_used"
    devices = session.scalars(select(KioskDevice).where(KioskDevice.name == "Lobby left")).all()
    assert len(devices) == 1

    page = client.get(PAGE).data.decode()
    assert "Lobby left" in page and "Not heard from yet" in page


def test_only_a_hash_of_the_code_is_kept(client, session, seeded):
    login_as(client, "manager@demo.test")
    code = new_code(client)
    row = session.scalar(select(KioskPairingCode))
    assert row.code_hash == token_hash(code.replace("-", ""))
    assert code.replace("-", "") not in " ".join(str(v) for v in vars(row).values())
    assert row.expires_at - row.created_at == timedelta(minutes=kiosks.PAIRING_MINUTES)


def test_an_expired_or_unknown_code_pairs_nothing(client, session, seeded):
    old = kiosks.create_pairing_code(session, "demo", "Late kiosk", now=utcnow() - timedelta(minutes=11))
    expired = pair(client, old.code)
    assert expired.status_code == 409 and expired.json["error"]["code"] == "pairing_code_expired"
    unknown = pair(client, "ABCD-EFGH-JK")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "pairing_code_unknown"
    session.rollback()  # a fresh read: the server wrote in its own transaction
    assert session.scalar(select(KioskDevice).where(KioskDevice.name == "Late kiosk")) is None
    fresh = kiosks.create_pairing_code(session, "demo", "On time", now=utcnow() - timedelta(minutes=9))
    assert pair(client, fresh.code).status_code == 201


def test_pairing_is_rate_limited_per_address(limited_app):
    app, _token = limited_app(PAIRING_RATE_LIMIT="3 per minute")
    client = app.test_client()
    answers = [pair(client, f"ZZZZ-ZZZZ-Z{n}").status_code for n in range(4)]
    assert answers == [404, 404, 404, 429]
    refused = pair(client, "ZZZZ-ZZZZ-ZZ")
    assert refused.json["error"]["code"] == "too_many_requests"


def test_only_managers_of_the_branch_create_codes_and_see_devices(client, session, seeded):
    from queue_app.catalogue import operations as catalogue

    catalogue.create_branch(session, "north", "North Branch", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", PASSWORD, "manager", ["north"])
    login_as(client, "staff1@demo.test")
    assert client.get(PAGE).status_code == 403
    assert post_form(client, PAGE, {"name": "X"}).status_code == 403
    client.post("/logout", data={})
    other = client.application.test_client()
    login_as(other, "north.manager@demo.test")
    assert other.get(PAGE).status_code == 403
    assert post_form(other, PAGE, {"name": "X"}).status_code == 403
    assert other.get("/manage/branches/north/kiosks").status_code == 200
    anonymous = client.application.test_client()
    assert anonymous.get(PAGE).status_code in (302, 401)
    session.rollback()  # a fresh read: the server wrote in its own transaction
    assert session.scalar(select(KioskPairingCode)) is None


def test_a_nameless_code_is_refused_on_the_page(client, session, seeded):
    login_as(client, "manager@demo.test")
    refused = post_form(client, PAGE, {"name": "   "})
    assert refused.status_code == 400 and b'id="pairing-code"' not in refused.data
    assert session.scalar(select(KioskPairingCode)) is None


def test_heartbeat_with_printer_state_shows_on_the_manager_page(client, seeded, session):
    token = seeded["kiosk_token"]
    answer = heartbeat(client, token, printer={"state": "paper_out", "detail": "no paper"}, bridge_port=8765)
    assert answer.status_code == 200 and answer.json["ok"] is True and answer.json["kiosk_path"] == "/kiosk/demo"
    device = session.scalar(select(KioskDevice).where(KioskDevice.token_hash == token_hash(token)))
    assert device.printer_state["state"] == "paper_out" and device.printer_state["bridge_port"] == 8765
    assert utcnow() - device.last_seen_at < timedelta(seconds=30)

    login_as(client, "manager@demo.test")
    row = re.search(r'<tr data-device="%d">(.*?)</tr>' % device.id, client.get(PAGE).data.decode(), re.S).group(1)
    assert "Lobby kiosk 1" in row and "Online" in row and "Paper out" in row and "no paper" in row

    heartbeat(client, token, printer={"state": "ok"})
    row = re.search(r'<tr data-device="%d">(.*?)</tr>' % device.id, client.get(PAGE).data.decode(), re.S).group(1)
    assert "Printer ready" in row and "Paper out" not in row

    # Not heard from for a while: the page says so.
    kiosks.record_heartbeat(session, device.id, {"state": "ok"}, now=utcnow() - timedelta(minutes=5))
    row = re.search(r'<tr data-device="%d">(.*?)</tr>' % device.id, client.get(PAGE).data.decode(), re.S).group(1)
    assert "Not responding" in row


def test_a_browser_kiosk_without_print_bridge_shows_online_from_its_page_pings(client, app, seeded, session):
    token = seeded["kiosk_token"]
    device = session.scalar(select(KioskDevice).where(KioskDevice.token_hash == token_hash(token)))
    manager = app.test_client()
    login_as(manager, "manager@demo.test")

    def row():
        page = manager.get(PAGE).data.decode()
        return re.search(rf'<tr data-device="{device.id}">(.*?)</tr>', page, re.DOTALL).group(1)

    assert "Not heard from yet" in row()
    kiosk = app.test_client()
    assert kiosk.get(f"/kiosk/demo?device={token}").status_code == 302
    assert kiosk.get("/kiosk/demo/ping").status_code == 200
    session.rollback()  # a fresh read: the server wrote in its own transaction
    first = session.get(KioskDevice, device.id).page_seen_at
    assert utcnow() - first < timedelta(seconds=30) and session.get(KioskDevice, device.id).last_seen_at is None
    assert "Online" in row() and "by the kiosk page" in row()
    # Pings 10 s apart are not each a write; the page stays online all the same.
    assert kiosk.get("/kiosk/demo/ping").status_code == 200
    session.rollback()  # a fresh read: the server wrote in its own transaction
    assert session.get(KioskDevice, device.id).page_seen_at == first

    # The print bridge heartbeat came later: the page says which was heard from last.
    kiosks.record_page_ping(session, device.id, now=utcnow() - timedelta(minutes=10))
    heartbeat(client, token)
    assert "Online" in row() and "by the print bridge" in row()
    # Both quiet for a while: not responding.
    kiosks.record_heartbeat(session, device.id, {"state": "ok"}, now=utcnow() - timedelta(minutes=5))
    assert "Not responding" in row()
    # A retired device's page ping writes nothing.
    kiosks.deactivate_device(session, device.id)
    assert kiosks.record_page_ping(session, device.id) is False


def test_heartbeats_are_for_device_tokens_only_and_checked(client, api):
    staff = client.post("/api/v1/kiosk/heartbeat", json={"printer": {"state": "ok"}}, headers=api.headers("staff1@demo.test"))
    assert staff.status_code == 403 and staff.json["error"]["code"] == "device_only"
    assert client.post("/api/v1/kiosk/heartbeat", json={"printer": {"state": "ok"}}).status_code == 401
    bad = heartbeat(client, api.kiosk_token, printer={"state": "on fire"})
    assert bad.status_code == 422 and "printer" in bad.json["error"]["fields"]["json"]
    assert heartbeat(client, api.kiosk_token, bridge_port=80).status_code == 422


def test_the_kiosk_page_tells_the_device_where_its_print_bridge_listens(client, api):
    token = api.kiosk_token
    kiosk = client.application.test_client()
    kiosk.get(f"/kiosk/demo?device={token}")
    assert kiosk.get("/kiosk/demo/ping").json["printer"] == {"url": None, "auto_print": False}
    heartbeat(client, token, printer={"state": "ok"}, bridge_port=9123)
    assert kiosk.get("/kiosk/demo/ping").json["printer"] == {"url": "http://127.0.0.1:9123/print", "auto_print": True}
    page = kiosk.get("/kiosk/demo")
    assert "http://127.0.0.1:9123/print" in page.data.decode()
    policy = page.headers["Content-Security-Policy"]
    assert "connect-src 'self' http://127.0.0.1:*" in policy and "script-src 'self';" in policy
    # No printer on the device: the page keeps the browser's printing.
    heartbeat(client, token, printer={"state": "none"}, bridge_port=9123)
    assert kiosk.get("/kiosk/demo/ping").json["printer"]["url"] is None


def test_ticket_answers_carry_what_the_printer_prints(client, api):
    kiosk = client.application.test_client()
    kiosk.get(f"/kiosk/demo?device={api.kiosk_token}")
    csrf = re.search(rb'name="csrf-token" content="([^"]+)"', kiosk.get("/kiosk/demo").data).group(1).decode()
    issued = kiosk.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": csrf}).json
    printed = issued["print"]
    assert printed["label"] == issued["label"] == "A001" and printed["track_url"] == issued["track_url"]
    assert printed["branch"] == "Demo Branch" and printed["service"] == "Accounts and deposits"
    assert printed["caption"] == "Your number" and printed["language"] == "en"
    assert printed["lines"][0] == "People ahead of you: 0"
    assert printed["lines"][1] == estimate_text(issued["estimate"]) or printed["lines"][1] == (
        "Estimated wait: " + estimate_text(issued["estimate"]))
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d", printed["time"])  # in the kiosk's language
    chinese = kiosk.post("/kiosk/demo/tickets?lang=zh_Hant", json={"service": "A"}, headers={"X-CSRFToken": csrf}).json
    assert chinese["print"]["language"] == "zh_Hant" and chinese["print"]["caption"] == "您的號碼"
    assert chinese["print"]["lines"][0] == "前面等候人數：1" and len(chinese["print"]["lines"]) == 2
    simplified = kiosk.post("/kiosk/demo/tickets?lang=zh_Hans", json={"service": "A"}, headers={"X-CSRFToken": csrf}).json
    assert simplified["print"]["lines"][0] == "前面等候人数：2" and simplified["print"]["footer"].startswith("请保留")


def test_the_device_cookie_survives_a_restart_with_a_new_secret_key(db_path, seeded):
    first = make_app(db_path, SECRET_KEY="key-before-restart")
    browser = first.test_client()
    browser.get(f"/kiosk/demo?device={seeded['kiosk_token']}")
    cookie = browser.get_cookie("queue_kiosk_device", path="/kiosk/")
    assert cookie is not None and cookie.http_only and cookie.value == seeded["kiosk_token"]
    session_cookie = browser.get_cookie("session")

    restarted = make_app(db_path, SECRET_KEY="key-after-restart").test_client()
    restarted.set_cookie("session", session_cookie.value)  # signed with the old key: worthless now
    assert restarted.get("/kiosk/demo/ping").status_code == 401  # what used to happen
    restarted.set_cookie("queue_kiosk_device", cookie.value, path="/kiosk/")
    assert restarted.get("/kiosk/demo/ping").status_code == 200
    assert restarted.get("/kiosk/demo").status_code == 200
    for app in (first,):
        with app.app_context():
            db.engine.dispose()


def test_a_retired_device_stops_working_everywhere(client, api, session):
    token = api.kiosk_token
    kiosk = client.application.test_client()
    kiosk.get(f"/kiosk/demo?device={token}")
    device = session.scalar(select(KioskDevice).where(KioskDevice.token_hash == token_hash(token)))
    login_as(client, "manager@demo.test")
    assert post_form(client, f"/manage/kiosks/{device.id}/retire", {}).status_code == 302
    assert "Retired" in client.get(PAGE).data.decode()
    assert kiosk.get("/kiosk/demo/ping").status_code == 401
    assert kiosk.get("/kiosk/demo").status_code == 401  # where the page's reload lands
    assert kiosk.get_cookie("queue_kiosk_device", path="/kiosk/") is None  # and the cookie is gone
    assert heartbeat(client, token).status_code == 401
    assert client.post("/api/v1/branches/demo/tickets", json={"service": "A"},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_machines_racing_with_one_code_make_one_device(app, session, seeded):
    import threading

    code = kiosks.create_pairing_code(session, "demo", "Raced").code
    answers, start = [], threading.Barrier(8)

    def try_pairing():
        client = app.test_client()
        start.wait()
        answers.append(pair(client, code).status_code)

    threads = [threading.Thread(target=try_pairing) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] + [409] * 7
    session.rollback()  # a fresh read: the server wrote in its own transaction
    assert len(session.scalars(select(KioskDevice).where(KioskDevice.name == "Raced")).all()) == 1
