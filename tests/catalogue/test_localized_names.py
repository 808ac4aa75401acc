"""Service and counter names per language (Service.names, Counter.names), and customer segment,
tier and status labels: what a zh_Hant or zh_Hans visitor, phone, TV, mail and manager see."""
import json
import re
from datetime import UTC, datetime

from helpers import first_free_slot, login_as, post_form
from sqlalchemy import select

from queue_app.booking.models import Appointment
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter, Service
from queue_app.core.models import utcnow
from queue_app.customers.models import Customer
from queue_app.demo.customers import seed_customer_history
from queue_app.notifications import notify
from queue_app.notifications.models import Notification

STAFF = "staff1@demo.test"
ADMIN = "admin@demo.test"


def kiosk_client(app, seeded):
    client = app.test_client()
    assert client.get(f"/kiosk/demo?device={seeded['kiosk_token']}").status_code == 302
    return client


def kiosk_csrf(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def visible(page: str) -> str:
    """The page's text outside scripts (its page-data JSON carries every language, for the scripts)."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL))


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.DOTALL).group(1))


def test_localized_name_falls_back_to_the_default_name():
    service = Service(name="Loans", names={"zh_Hant": "貸款"})
    assert catalogue.localized_name(service, "zh_Hant") == "貸款"
    assert catalogue.localized_name(service, "zh_Hans") == "Loans"  # no Simplified name: the default
    assert catalogue.localized_name(Service(name="Loans", names=None), "zh_Hant") == "Loans"
    assert catalogue.pick_name("Counter 1", {"zh_Hans": "1 号柜台"}, "zh_Hans") == "1 号柜台"


def test_kiosk_tiles_ticket_and_printout_use_the_kiosk_language(app, seeded):
    client = kiosk_client(app, seeded)
    page = client.get("/kiosk/demo?lang=zh_Hant").get_data(as_text=True)
    assert "帳戶與存款" in visible(page) and "Accounts and deposits" not in visible(page)
    ticket = client.post("/kiosk/demo/tickets?lang=zh_Hant", json={"service": "A"},
                         headers={"X-CSRFToken": kiosk_csrf(page)}).json
    assert ticket["service_name"] == "帳戶與存款" and ticket["print"]["service"] == "帳戶與存款"
    english = client.get("/kiosk/demo?lang=en").get_data(as_text=True)
    assert "Accounts and deposits" in english and "帳戶與存款" not in english


def test_a_service_without_names_shows_its_default_name_in_every_language(app, api, seeded):
    created = api.call("POST", "/branches/demo/services", ADMIN, json={"code": "D", "name": "Foreign exchange"})
    assert created.status_code == 201 and created.json["names"] == {}
    page = kiosk_client(app, seeded).get("/kiosk/demo?lang=zh_Hans").get_data(as_text=True)
    assert "Foreign exchange" in page and "账户与存款" in page


def test_phone_page_and_its_pushes_carry_names_in_every_language(app, api, client, seeded):
    ticket = api.issue("A")
    counter_id = api.counter_id("Counter 1")
    assert api.call("POST", f"/counters/{counter_id}/call-next", STAFF).json["label"] == ticket["label"]
    page = visible(client.get(f"/t/{ticket['token']}?lang=zh_Hans").get_data(as_text=True))
    assert "账户与存款" in page and "1 号柜台" in page
    assert "Accounts and deposits" not in page and "Counter 1" not in page
    # The REST and socket status: the default name plus every language's, for the page to pick.
    status = api.call("GET", f"/tickets/{ticket['token']}").json
    assert status["service_names"] == {"zh_Hant": "帳戶與存款", "zh_Hans": "账户与存款"}
    assert status["counter"] == "Counter 1" and status["counter_names"]["zh_Hant"] == "1 號櫃檯"


def test_display_snapshot_has_names_and_the_page_reads_zh_hant(app, api, client, seeded):
    api.issue("B")
    page = client.get("/display/demo?lang=zh_Hant").get_data(as_text=True)
    assert '<html lang="zh-Hant"' in page  # what live.js localName reads the language from
    snapshot = page_data(page)["snapshot"]
    waiting = {w["service"]: w for w in snapshot["waiting"]}
    assert waiting["B"]["name"] == "Loans and mortgages" and waiting["B"]["names"]["zh_Hant"] == "貸款與房貸"
    counters = {c["name"]: c for c in snapshot["counters"]}
    assert counters["Counter 2"]["names"] == {"zh_Hant": "2 號櫃檯", "zh_Hans": "2 号柜台"}
    counter_id = api.counter_id("Counter 2")
    api.call("POST", f"/counters/{counter_id}/call-next", STAFF)
    recent = page_data(client.get("/display/demo").get_data(as_text=True))["snapshot"]["recent"]
    assert recent[0]["counter"] == "Counter 2" and recent[0]["counter_names"]["zh_Hans"] == "2 号柜台"


def test_booking_mail_names_the_service_in_the_recipient_language(app, api, seeded, session):
    slot = first_free_slot(api)
    booked = api.call("POST", "/branches/demo/appointments", json={
        "service": "B", "start": slot["start"], "name": "Lin", "email": "lin@example.test", "language": "zh_Hant"})
    assert booked.status_code == 201, booked.json
    appointment = session.scalar(select(Appointment).where(Appointment.check_in_code == booked.json["check_in_code"]))
    mail = session.scalar(select(Notification).where(Notification.appointment_id == appointment.id))
    rendered = notify.render(mail, appointment, datetime.now(UTC))
    assert "貸款與房貸" in rendered.subject and "貸款與房貸" in rendered.body
    assert "Loans and mortgages" not in rendered.subject + rendered.body
    # The glossary's words, as on the kiosk page: 取號機 and 報到碼.
    assert "取號機" in rendered.body and "報到碼" in rendered.body and "報到代碼" not in rendered.body


def test_manage_pages_save_names_per_language(app, seeded, session):
    client = app.test_client()
    login_as(client, ADMIN)
    service = session.scalar(select(Service).where(Service.code == "C"))
    form = client.get(f"/manage/services/{service.id}/edit").get_data(as_text=True)
    assert 'value="信用卡與諮詢"' in form and 'name="name_zh_Hans"' in form and 'name="name_en"' in form
    saved = post_form(client, f"/manage/services/{service.id}/edit", {
        "name": "Cards and enquiries", "name_en": "", "name_zh_Hant": "卡片服務", "name_zh_Hans": "",
        "expected_minutes": "5", "checklist": "", "walk_in_enabled": "y", "booking_enabled": "y", "active": "y"})
    assert saved.status_code == 302
    session.rollback()  # end the read snapshot taken before the post
    assert session.get(Service, service.id).names == {"zh_Hant": "卡片服務"}  # empty: falls back to the name
    added = post_form(client, "/manage/branches/demo/counters", {
        "name": "Counter 4", "name_zh_Hant": "4 號櫃檯", "name_zh_Hans": "4 号柜台", "services": ["A"]})
    assert added.status_code == 302
    session.rollback()
    counter = session.scalar(select(Counter).where(Counter.name == "Counter 4"))
    assert counter.names == {"zh_Hant": "4 號櫃檯", "zh_Hans": "4 号柜台"}
    renamed = post_form(client, f"/manage/counters/{counter.id}", {
        "state": "open", "services": ["A"], "name_zh_Hant": "四號櫃檯", "name_zh_Hans": "4 号柜台"})
    assert renamed.status_code == 302
    session.rollback()
    assert session.get(Counter, counter.id).names == {"zh_Hant": "四號櫃檯", "zh_Hans": "4 号柜台"}
    too_long = post_form(client, f"/manage/services/{service.id}/edit", {
        "name": "Cards and enquiries", "name_zh_Hant": "卡" * 201, "expected_minutes": "5"})
    assert too_long.status_code == 400


def test_api_takes_names_and_refuses_unknown_languages(api, session):
    service_id = session.scalar(select(Service.id).where(Service.code == "A"))
    changed = api.call("PATCH", f"/services/{service_id}", ADMIN, json={"names": {"zh_Hans": "存款"}})
    assert changed.status_code == 200 and changed.json["names"] == {"zh_Hans": "存款"}
    assert changed.json["name"] == "Accounts and deposits"
    for bad in ({"fr": "Dépôts"}, {"zh_Hant": 5}, {"zh_Hant": "存" * 201}, ["zh_Hant"]):
        refused = api.call("PATCH", f"/services/{service_id}", ADMIN, json={"names": bad})
        assert refused.status_code == 422 and refused.is_json, bad
    counter = api.call("POST", "/branches/demo/counters", ADMIN,
                       json={"name": "Counter 9", "names": {"zh_Hant": "9 號櫃檯"}, "services": ["A"]})
    assert counter.status_code == 201 and counter.json["names"] == {"zh_Hant": "9 號櫃檯"}
    refused = api.call("PATCH", f"/counters/{counter.json['id']}", ADMIN, json={"names": {"zh_Hant": "櫃" * 65}})
    assert refused.status_code == 422 and refused.is_json
    # Names are a rename: a manager may open the counter but not rename it in any language.
    manager = api.call("PATCH", f"/counters/{counter.json['id']}", "manager@demo.test", json={"names": {}})
    assert manager.status_code == 403
    listed = api.call("GET", "/branches/demo/services").json
    assert next(s for s in listed if s["code"] == "A")["names"] == {"zh_Hans": "存款"}


def test_customer_segments_tiers_and_statuses_read_translated_on_zh_pages(app, session):
    seed_customer_history(session, "demo", now=utcnow())
    client = app.test_client()
    login_as(client, "manager@demo.test")
    page = client.get("/manage/branches/demo/customers?lang=zh_Hant").get_data(as_text=True)
    text = visible(page)  # what people read, not the stored keys in form values
    for raw in ("at_risk_valuable", "loyal_regular", "occasional"):
        assert raw not in text, raw
    assert "核心客戶" in text
    assert not re.search(r"\b(gold|silver|standard)\b", text)
    gold, silver, standard = (gettext_in(app, tier) for tier in ("Gold", "Silver", "Standard"))
    assert gold in text
    customer = session.scalar(select(Customer).where(Customer.name == "Liu Jun"))
    record = visible(client.get(f"/customers/{customer.id}?lang=zh_Hant").get_data(as_text=True))
    assert not re.search(r"\b(gold|silver|standard|done|no_show|cancelled)\b", record)
    assert any(label in record for label in (gold, silver, standard))


def gettext_in(app, message: str, language: str = "zh_Hant") -> str:
    with app.test_request_context(f"/?lang={language}"):
        from flask_babel import gettext

        return gettext(message)
