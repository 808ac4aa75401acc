"""The live pages: kiosk, lobby display, staff console and the phone tracking page.

Who may open each page, the kiosk's device registration and ticket endpoint, and that no page
or socket payload a customer can see carries a name or a phone number.
"""
import json
import re

from helpers import login, meta_csrf, page_data, received, settle
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Service
from queue_app.customers.models import Customer
from queue_app.kiosks.models import KioskDevice
from queue_app.realtime.live import NAMESPACE, socketio_of
from queue_app.tickets.models import Ticket

NAME = "Chen Mei-Ling"
PHONE = "+886912345678"
OTHER_PHONE = "+886900111222"


# ---- Kiosk -------------------------------------------------------------------------------------

def test_kiosk_without_a_device_session_explains_how_to_register(client, seeded):
    page = client.get("/kiosk/demo")
    assert page.status_code == 401
    assert b"queue-app kiosk-token demo --name" in page.data
    assert b"csrf-token" not in page.data


def test_kiosk_device_link_stores_the_device_and_drops_the_token_from_the_address(client, seeded):
    token = seeded["kiosk_token"]
    response = client.get(f"/kiosk/demo?device={token}")
    assert response.status_code == 302 and response.headers["Location"] == "/kiosk/demo"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    with client.session_transaction() as browser_session:
        assert isinstance(browser_session["kiosk_id"], int)
        assert browser_session.permanent
    page = client.get("/kiosk/demo")
    assert page.status_code == 200
    assert token.encode() not in page.data
    for text in (b"Accounts and deposits", b"Loans and mortgages", b"Cards and enquiries", b"Out of order"):
        assert text in page.data
    assert b'<button type="button" class="service-tile" data-service="A">' in page.data
    assert meta_csrf(page.data)
    assert "<script>" not in page.data.decode()  # no inline code: a strict CSP must keep working
    localised = client.get(f"/kiosk/demo?device={token}&lang=zh_Hans")
    assert localised.headers["Location"] == "/kiosk/demo?lang=zh_Hans"


def test_kiosk_refuses_a_bad_token_a_token_of_another_branch_and_a_disabled_device(client, seeded, north, session):
    assert client.get("/kiosk/demo?device=not-a-token").status_code == 401
    assert client.get(f"/kiosk/demo?device={north['kiosk_token']}").status_code == 401
    assert client.get(f"/kiosk/north?device={north['kiosk_token']}").status_code == 302
    assert client.get("/kiosk/demo").status_code == 401  # the north kiosk is not a demo kiosk
    device = session.scalar(select(KioskDevice).where(KioskDevice.name == "North kiosk"))
    device.active = False
    session.commit()
    assert client.get("/kiosk/north").status_code == 401


def test_kiosk_language_switch_shows_chinese_text(client, kiosk):
    traditional = client.get("/kiosk/demo?lang=zh_Hant").data.decode()
    simplified = client.get("/kiosk/demo?lang=zh_Hans").data.decode()
    assert '<html lang="zh-Hant"' in traditional and "歡迎" in traditional and "取號機" in traditional
    assert '<html lang="zh-Hans"' in simplified and "欢迎" in simplified and "取号机" in simplified
    assert 'aria-current="true">简体中文' in simplified


def test_kiosk_issues_a_ticket_with_a_qr_code_of_the_tracking_link(client, kiosk, session):
    response = client.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": kiosk})
    assert response.status_code == 201, response.json
    ticket = response.json
    assert ticket["label"] == "A001" and ticket["service"] == "A"
    assert ticket["service_name"] == "Accounts and deposits"
    assert ticket["ahead"] == 0 and set(ticket["estimate"]) == {"state", "minutes", "low", "high", "opens_at"}
    assert ticket["track_url"].startswith("http://kiosk.test/t/")
    assert ticket["qr_svg"].startswith("<svg") and "<path" in ticket["qr_svg"]
    assert "+08:00" in ticket["issued_at"]
    stored = session.scalar(select(Ticket).where(Ticket.label == "A001"))
    assert stored.kiosk_id is not None
    # The tracking link works (it is what the QR code holds).
    assert client.get(ticket["track_url"].removeprefix("http://kiosk.test")).status_code == 200
    second = client.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": kiosk}).json
    assert second["label"] == "A002" and second["ahead"] == 1


def test_kiosk_ticket_errors_are_json(client, kiosk, seeded):
    unknown = client.post("/kiosk/demo/tickets", json={"service": "Z"}, headers={"X-CSRFToken": kiosk})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "service_not_found"
    assert unknown.json["error"]["message"]
    malformed = client.post("/kiosk/demo/tickets", data="nope", content_type="application/json",
                            headers={"X-CSRFToken": kiosk})
    assert malformed.status_code == 400 and malformed.json["error"]["code"] == "malformed_json"
    no_csrf = client.post("/kiosk/demo/tickets", json={"service": "A"})
    assert no_csrf.status_code == 400 and no_csrf.json["error"]["code"] == "csrf_failed"
    other = client.post("/kiosk/north/tickets", json={"service": "A"}, headers={"X-CSRFToken": kiosk})
    assert other.status_code == 401 and other.json["error"]["code"] == "kiosk_not_registered"


def test_kiosk_refuses_tickets_for_a_booking_only_service(client, kiosk, session):
    service = session.scalar(select(Service).where(Service.code == "B"))
    catalogue.update_service(session, service.id, walk_in_enabled=False)
    page = client.get("/kiosk/demo").data
    assert b'data-service="B"' not in page
    refused = client.post("/kiosk/demo/tickets", json={"service": "B"}, headers={"X-CSRFToken": kiosk})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "walk_in_disabled"


def test_kiosk_ping_answers_with_a_fresh_csrf_token_and_waiting_counts(client, kiosk, seeded):
    client.post("/kiosk/demo/tickets", json={"service": "C"}, headers={"X-CSRFToken": kiosk})
    ping = client.get("/kiosk/demo/ping")
    assert ping.status_code == 200 and ping.json["ok"] is True
    assert ping.json["waiting"] == {"A": 0, "B": 0, "C": 1}
    fresh = ping.json["csrf_token"]
    assert client.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": fresh}).status_code == 201
    with client.session_transaction() as browser_session:
        browser_session.clear()
    # The long-lived device cookie registers the browser again (a restart without a fixed secret key)...
    assert client.get("/kiosk/demo/ping").status_code == 200
    with client.session_transaction() as browser_session:
        browser_session.clear()
    client.delete_cookie("queue_kiosk_device", path="/kiosk/")
    assert client.get("/kiosk/demo/ping").status_code == 401  # ...without it the kiosk is not registered


# ---- Staff console -----------------------------------------------------------------------------

def test_staff_console_needs_login(client, seeded):
    response = client.get("/staff/counters/1")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_counter_list_links_each_counter_of_the_staff_branches(client, seeded, north):
    login(client)
    page = client.get("/staff").data.decode()
    assert "Counter 1" in page and "/staff/counters/" in page
    assert "North 1" not in page  # staff1 works at demo only
    login(client, "admin@demo.test")
    assert "North 1" in client.get("/staff").data.decode()


def test_counter_console_refuses_staff_of_another_branch(client, seeded, north):
    login(client)
    assert client.get(f"/staff/counters/{north['counter_id']}").status_code == 403
    assert client.get("/staff/counters/9999").status_code == 404
    login(client, "admin@demo.test")
    assert client.get(f"/staff/counters/{north['counter_id']}").status_code == 200


def test_counter_console_shows_the_actions_with_their_shortcuts(client, api):
    counter_id = api.counter_id("Counter 1")
    login(client)
    page = client.get(f"/staff/counters/{counter_id}")
    assert page.status_code == 200
    html = page.data.decode()
    for name, key in (("Call next", "N"), ("Recall", "R"), ("Start", "S"), ("Finish", "F"),
                      ("No-show", "X"), ("Transfer", "T")):
        assert re.search(rf'aria-keyshortcuts="{key}" disabled>\s*{name} <kbd aria-hidden="true">{key}</kbd>', html)
    data = page_data(page.data)
    assert data["counter_id"] == counter_id and data["served"] == ["A", "C"]
    assert data["services"] == ["A", "B", "C"]
    assert "<script>" not in html


def test_the_console_session_acts_through_the_api_with_its_csrf_token(client, api):
    """What staff.js does: the login session plus X-CSRFToken from the page."""
    api.issue("A")
    counter_id = api.counter_id("Counter 1")
    login(client)
    data = page_data(client.get(f"/staff/counters/{counter_id}").data)
    without = client.post(data["call_next_url"])
    assert without.status_code == 400
    called = client.post(data["call_next_url"], headers={"X-CSRFToken": data["csrf_token"]})
    assert called.status_code == 200 and called.json["label"] == "A001"
    assert called.json["checklist"] == "Photo ID\nAccount number or bank book"
    busy = client.post(data["call_next_url"], headers={"X-CSRFToken": data["csrf_token"]})
    assert busy.status_code == 409 and busy.json["error"]["code"] == "counter_busy"
    start = data["ticket_action_url"].format(id=called.json["id"], action="start")
    assert client.post(start, headers={"X-CSRFToken": data["csrf_token"]}).json["status"] == "serving"
    detail = client.get(data["counter_url"]).json
    assert detail["ticket"]["label"] == "A001" and detail["ticket"]["status"] == "serving"
    fresh = client.get(data["csrf_url"]).json["csrf_token"]
    finish = data["ticket_action_url"].format(id=called.json["id"], action="finish")
    assert client.post(finish, headers={"X-CSRFToken": fresh}).json["status"] == "done"


# ---- Display and tracking page -----------------------------------------------------------------

def test_display_and_tracking_pages_are_public(client, api):
    ticket = api.issue("B")
    display = client.get("/display/demo")
    assert display.status_code == 200
    data = page_data(display.data)
    assert data["branch"] == "demo" and data["timezone"] == "Asia/Taipei" and data["clock_lang"] == "en-GB"
    assert data["announcements"] == [{"language": "en", "speech_lang": "en-US",
                                      "call": "Ticket {label}, please go to {counter}",
                                      "recall": "Calling again: ticket {label}, please go to {counter}"}]
    assert [c["name"] for c in data["snapshot"]["counters"]] == ["Counter 1", "Counter 2", "Counter 3"]
    assert client.get("/display/nowhere").status_code == 404
    track = client.get(f"/t/{ticket['token']}")
    assert track.status_code == 200 and b"B001" in track.data and b"Leave the queue" in track.data
    assert b"I need more time" in track.data
    assert track.headers["Cache-Control"] == "no-store"
    assert client.get("/t/not-a-ticket").status_code == 404


def test_display_announces_in_its_own_language(client, api, session):
    catalogue.update_branch(session, "demo", language="zh_Hant")
    spoken = page_data(client.get("/display/demo").data)["announcements"]
    assert [a["speech_lang"] for a in spoken] == ["zh-TW"] and "Ticket" not in spoken[0]["call"]
    # A display set to another language speaks and shows that one (the tester's zh display spoke English).
    data = page_data(client.get("/display/demo?lang=en").data)
    assert data["clock_lang"] == "en-GB" and [a["speech_lang"] for a in data["announcements"]] == ["en-US"]
    data = page_data(client.get("/display/demo?lang=zh_Hans").data)
    assert data["clock_lang"] == "zh-CN" and data["announcements"][0]["language"] == "zh_Hans"
    assert "{label}" in data["announcements"][0]["call"] and "Ticket" not in data["announcements"][0]["call"]


def test_announcement_languages_set_on_the_branch_form_are_spoken_in_turn(client, api):
    login(client, "admin@demo.test")
    page = client.get("/manage/branches/demo/edit")
    form = {"name": "Demo Branch", "timezone": "Asia/Taipei", "announcement_languages": "zh-hant, en",
            "csrf_token": re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()}
    assert client.post("/manage/branches/demo/edit", data=form).status_code == 302
    assert b'value="zh_Hant, en"' in client.get("/manage/branches/demo/edit").data
    spoken = page_data(client.get("/display/demo?lang=zh_Hans").data)["announcements"]
    assert [a["language"] for a in spoken] == ["zh_Hant", "en"]
    assert spoken[1]["call"] == "Ticket {label}, please go to {counter}" and "Ticket" not in spoken[0]["call"]

    for typed, message in (("en, fr", b"unknown language &#39;fr&#39;"), ("en en", b"each language once.")):
        refused = client.post("/manage/branches/demo/edit", data={**form, "announcement_languages": typed})
        assert refused.status_code == 400 and message in refused.data
    assert [a["language"] for a in page_data(client.get("/display/demo").data)["announcements"]] == ["zh_Hant", "en"]
    form["announcement_languages"] = ""
    assert client.post("/manage/branches/demo/edit", data=form).status_code == 302
    assert [a["language"] for a in page_data(client.get("/display/demo").data)["announcements"]] == ["en"]


def test_tracking_page_follows_the_ticket_state(client, api):
    ticket = api.issue("A")
    api.call("POST", f"/counters/{api.counter_id('Counter 2')}/call-next", "staff1@demo.test")
    page = client.get(f"/t/{ticket['token']}").data.decode()
    called_block = re.search(r'<div data-when="called"[^>]*>(.*?)</div>', page, re.S)
    assert "hidden" not in re.search(r'<div data-when="called"[^>]*>', page).group(0)
    assert "Counter 2" in called_block.group(1)
    assert re.search(r'<div data-when="waiting" hidden>', page)


def test_no_page_or_socket_payload_shows_a_customer_name_or_phone(app, client, api, session):
    with_phone = api.issue("A", phone=PHONE)
    named = api.issue("A")
    customer = Customer(name=NAME, phone=OTHER_PHONE, language="en", tier="standard", strikes=0)
    session.add(customer)
    session.flush()
    session.get(Ticket, named["id"]).customer_id = customer.id
    session.commit()

    display = socketio_of(app).test_client(app, namespace=NAMESPACE, flask_test_client=client)
    display.emit("join", {"branch": "demo"}, namespace=NAMESPACE)
    phones = []
    for ticket in (with_phone, named):
        phone = socketio_of(app).test_client(app, namespace=NAMESPACE, flask_test_client=client)
        phone.emit("join", {"ticket": ticket["token"]}, namespace=NAMESPACE)
        phones.append(phone)
    settle()
    counter = api.counter_id("Counter 1")
    api.call("POST", f"/counters/{counter}/call-next", "staff1@demo.test")
    api.call("POST", f"/counters/{api.counter_id('Counter 2')}/call-next", "staff1@demo.test")
    received(display, "called", where=lambda c: c["label"] == "A002")
    for phone in phones:
        received(phone, "ticket", where=lambda t: t["status"] == "called")
    settle()
    received(display, "queue", timeout=0)

    secrets = (NAME, PHONE, PHONE.lstrip("+"), "912345678", "900111222")
    pages = [client.get("/display/demo").data.decode()]
    pages += [client.get(f"/t/{t['token']}").data.decode() for t in (with_phone, named)]
    payloads = [json.dumps(p["args"], ensure_ascii=False) for live in (display, *phones) for p in live.kept]
    assert len(payloads) >= 5
    for text in pages + payloads:
        for secret in secrets:
            assert secret not in text
    for live in (display, *phones):
        live.disconnect(namespace=NAMESPACE)
