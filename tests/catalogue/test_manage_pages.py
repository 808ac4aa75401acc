"""Manager and admin pages (/manage): forms with CSRF over the catalogue domain functions."""
import re

import pytest
from helpers import PASSWORD, csrf_token, login_as, post_form, utc

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.catalogue import operations as catalogue


def counters_json(api):
    response = api.call("GET", "/branches/demo/counters", "staff1@demo.test")
    assert response.status_code == 200
    return {c["name"]: c for c in response.json}


@pytest.fixture
def north(session):
    """A second branch with its own manager."""
    catalogue.create_branch(session, "north", "North Branch", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", PASSWORD, "manager", ["north"])


def test_manager_opens_pauses_and_closes_a_counter_and_sets_its_services(client, api):
    login_as(client, "manager@demo.test")
    counter_id = api.counter_id("Counter 1")
    page = client.get("/manage/branches/demo/counters")
    assert page.status_code == 200 and b"Counter 1" in page.data

    response = post_form(client, f"/manage/counters/{counter_id}", {"state": "paused", "services": ["B", "C"]})
    assert response.status_code == 302 and response.headers["Location"] == "/manage/branches/demo/counters"
    counter = counters_json(api)["Counter 1"]
    assert (counter["state"], counter["services"]) == ("paused", ["B", "C"])
    assert b"Counter 1 saved." in client.get("/manage/branches/demo/counters").data

    post_form(client, f"/manage/counters/{counter_id}", {"state": "closed", "services": ["A"]})
    counter = counters_json(api)["Counter 1"]
    assert (counter["state"], counter["services"]) == ("closed", ["A"])

    post_form(client, f"/manage/counters/{counter_id}", {"state": "open"})  # every box unticked
    counter = counters_json(api)["Counter 1"]
    assert (counter["state"], counter["services"]) == ("open", [])


def test_counter_form_refuses_an_unknown_service_or_state(client, api):
    login_as(client, "manager@demo.test")
    counter_id = api.counter_id("Counter 2")
    for data, message in (({"state": "open", "services": ["Z"]}, b"&#39;Z&#39; is not a valid choice"),
                          ({"state": "broken", "services": ["A"]}, b"Not a valid choice.")):
        response = post_form(client, f"/manage/counters/{counter_id}", data)
        assert response.status_code == 400 and message in response.data
        assert f'id="counter-{counter_id}-state"'.encode() in response.data  # the page itself, not a bare error
    counter = counters_json(api)["Counter 2"]
    assert (counter["state"], counter["services"]) == ("open", ["A", "B"])


def test_a_manager_of_another_branch_gets_403(client, api, north):
    counter_id = api.counter_id("Counter 1")
    login_as(client, "north.manager@demo.test")
    index = client.get("/manage/")
    assert index.status_code == 200 and b"North Branch" in index.data and b"Demo Branch" not in index.data
    assert client.get("/manage/branches/north/counters").status_code == 200
    assert client.get("/manage/branches/demo/counters").status_code == 403
    assert post_form(client, f"/manage/counters/{counter_id}", {"state": "closed", "services": ["A"]}).status_code == 403
    assert counters_json(api)["Counter 1"]["state"] == "open"


def test_staff_get_403_and_managers_cannot_reach_admin_pages(client, seeded):
    login_as(client, "staff1@demo.test")
    assert client.get("/manage/").status_code == 403
    assert client.get("/manage/branches/demo/counters").status_code == 403

    client.post("/logout", data={"csrf_token": csrf_token(client.get("/staff").data)})
    login_as(client, "manager@demo.test")
    for url in ("/manage/branches/new", "/manage/branches/demo/edit", "/manage/branches/demo/services",
                "/manage/services/1/edit", "/manage/staff", "/manage/staff/1/edit"):
        assert client.get(url).status_code == 403, url
    assert post_form(client, "/manage/branches/demo/counters", {"name": "Counter 9"}).status_code == 403


def test_pages_need_a_login(client, seeded):
    response = client.get("/manage/branches/demo/counters")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_admin_creates_a_branch_with_opening_hours_and_sees_it(client, api):
    login_as(client, "admin@demo.test")
    response = post_form(client, "/manage/branches/new", {
        "slug": "north", "name": "North Branch", "timezone": "Europe/Berlin",
        "opening_hours": "mon 09:00-12:30, 13:30-17:00\r\n\r\nSat 10:00-14:00\r\nsun closed",
        "closed_dates": "2025-12-25\r\n2025-01-01", "allow_remote_tickets": "y",
    })
    assert response.status_code == 302 and response.headers["Location"] == "/manage/"
    index = client.get("/manage/")
    assert b"North Branch" in index.data and b"Branch North Branch created." in index.data

    branch = api.call("GET", "/branches/north").json
    assert branch["timezone"] == "Europe/Berlin" and branch["allow_remote_tickets"] is True
    assert branch["opening_hours"] == {"mon": [["09:00", "12:30"], ["13:30", "17:00"]], "sat": [["10:00", "14:00"]]}
    assert branch["closed_dates"] == ["2025-01-01", "2025-12-25"]

    edit = client.get("/manage/branches/north/edit")
    assert b"mon 09:00-12:30, 13:30-17:00\nsat 10:00-14:00" in edit.data

    response = post_form(client, "/manage/branches/north/edit", {
        "name": "North", "timezone": "Asia/Tokyo", "opening_hours": "tue 08:00-16:00", "closed_dates": ""})
    assert response.status_code == 302
    branch = api.call("GET", "/branches/north").json
    assert (branch["name"], branch["timezone"], branch["opening_hours"], branch["closed_dates"],
            branch["allow_remote_tickets"]) == ("North", "Asia/Tokyo", {"tue": [["08:00", "16:00"]]}, [], False)


@pytest.mark.parametrize("field, value, message", [
    ("timezone", "Mars/Olympus_Mons", b"is not an IANA time zone"),
    ("opening_hours", "monday 09:00-17:00", b"Line 1: start with a weekday"),
    ("opening_hours", "mon 09:00-12:00\nmon 13:00-17:00", b"Line 2: mon is given twice."),
    ("opening_hours", "mon 09:00 to 17:00", b"write each interval as HH:MM-HH:MM"),
    ("opening_hours", "mon 17:00-09:00", b"closes before it opens"),
    ("opening_hours", "mon 9am-5pm", b"is not HH:MM"),
    ("closed_dates", "25/12/2025", b"must be a list of YYYY-MM-DD dates."),
    ("slug", "North Branch", b"lower-case letters, digits and dashes"),
    ("slug", "demo", b"Branch &#39;demo&#39; already exists."),
])
def test_admin_gets_a_readable_400_for_bad_branch_input(client, api, field, value, message):
    login_as(client, "admin@demo.test")
    form = {"slug": "north", "name": "North", "timezone": "Europe/Berlin", "opening_hours": "mon 09:00-17:00",
            "closed_dates": "", field: value}
    response = post_form(client, "/manage/branches/new", form)
    assert response.status_code == 400
    assert message in response.data
    # The message sits right after its field, and what was typed is kept for correcting.
    field_html = re.search(rb'name="' + field.encode() + rb'".*?(?=<label|<input class="primary")',
                           response.data, re.S).group(0)
    assert message in field_html
    if field != "slug":
        assert api.call("GET", "/branches/north").status_code == 404


def test_bad_input_on_the_edit_page_leaves_the_branch_unchanged(client, api):
    login_as(client, "admin@demo.test")
    response = post_form(client, "/manage/branches/demo/edit", {
        "name": "Renamed", "timezone": "Asia/Taipei", "opening_hours": "mon 12:00-13:00, 12:30-14:00"})
    assert response.status_code == 400 and b"intervals overlap or are out of order" in response.data
    assert b"mon 12:00-13:00, 12:30-14:00" in response.data
    assert api.call("GET", "/branches/demo").json["name"] == "Demo Branch"


def test_the_branch_phone_is_a_checked_setting_on_the_edit_page(client, api):
    login_as(client, "admin@demo.test")
    form = {"name": "Demo Branch", "timezone": "Asia/Taipei", "opening_hours": "mon 09:00-17:00"}
    refused = post_form(client, "/manage/branches/demo/edit", {**form, "phone": "call us"})
    assert refused.status_code == 400
    field_html = re.search(rb'name="phone".*?(?=<label|<input class="primary")', refused.data, re.S).group(0)
    assert b"not a phone number; write it with its country code" in field_html and b'value="call us"' in field_html
    assert api.call("GET", "/branches/demo").json["phone"] is None
    saved = post_form(client, "/manage/branches/demo/edit", {**form, "phone": "02 2345 6789"})
    assert saved.status_code == 302
    assert api.call("GET", "/branches/demo").json["phone"] == "+886223456789"  # read in the branch's country
    assert b'value="+886223456789"' in client.get("/manage/branches/demo/edit").data
    assert post_form(client, "/manage/branches/demo/edit", {**form, "phone": ""}).status_code == 302
    assert api.call("GET", "/branches/demo").json["phone"] is None


def test_the_set_off_margin_is_a_checked_setting_on_the_edit_page(client, api):
    login_as(client, "admin@demo.test")
    form = {"name": "Demo Branch", "timezone": "Asia/Taipei", "opening_hours": "mon 09:00-17:00"}
    for bad in ("61", "-1", "soon"):
        refused = post_form(client, "/manage/branches/demo/edit", {**form, "set_off_margin_minutes": bad})
        assert refused.status_code == 400
        field_html = re.search(rb'name="set_off_margin_minutes".*?(?=<label|<input class="primary")', refused.data,
                               re.S).group(0)
        assert b"From 0 to 60 minutes." in field_html or b"Not a valid integer value." in field_html
    assert api.call("GET", "/branches/demo").json["set_off_margin_minutes"] == 5
    assert b'name="set_off_margin_minutes"' in client.get("/manage/branches/demo/edit").data
    assert post_form(client, "/manage/branches/demo/edit", {**form, "set_off_margin_minutes": "2"}).status_code == 302
    assert api.call("GET", "/branches/demo").json["set_off_margin_minutes"] == 2
    # Left empty, the setting stays.
    assert post_form(client, "/manage/branches/demo/edit", form).status_code == 302
    assert api.call("GET", "/branches/demo").json["set_off_margin_minutes"] == 2


def test_admin_adds_and_edits_a_service(client, api):
    login_as(client, "admin@demo.test")
    response = post_form(client, "/manage/branches/demo/services", {
        "code": "d", "name": "Deliveries", "expected_minutes": "7", "checklist": "Photo ID\r\nReceipt\r\n"})
    assert response.status_code == 302
    page = client.get("/manage/branches/demo/services")
    assert b"Service D added." in page.data and b"Deliveries" in page.data
    service = next(s for s in api.call("GET", "/branches/demo/services").json if s["code"] == "D")
    assert (service["name"], service["expected_minutes"], service["checklist"]) == ("Deliveries", 7, "Photo ID\nReceipt")

    # The new service is offered to counters, in code order.
    counters_page = client.get("/manage/branches/demo/counters").data.decode()
    codes = re.findall(r'id="counter-1-services-\d+" name="services" type="checkbox" value="(\w+)"', counters_page)
    assert codes == ["A", "B", "C", "D"]

    edit_url = f"/manage/services/{service['id']}/edit"
    assert b"Deliveries" in client.get(edit_url).data
    response = post_form(client, edit_url, {"name": "Parcels", "expected_minutes": "12", "checklist": "",
                                            "walk_in_enabled": "y", "active": "y"})
    assert response.status_code == 302 and response.headers["Location"] == "/manage/branches/demo/services"
    service = next(s for s in api.call("GET", "/branches/demo/services").json if s["code"] == "D")
    assert (service["name"], service["expected_minutes"], service["booking_enabled"]) == ("Parcels", 12, False)


@pytest.mark.parametrize("form, message", [
    ({"code": "A", "name": "Again", "expected_minutes": "5"}, b"Service code A is taken at &#39;demo&#39;."),
    ({"code": "A1", "name": "Digits", "expected_minutes": "5"}, b"one or two letters A-Z"),
    ({"code": "E", "name": "Slow", "expected_minutes": "600"}, b"a whole number of minutes from 1 to 480."),
    ({"code": "E", "name": "Vague", "expected_minutes": "soon"}, b"Not a valid integer value."),
])
def test_bad_service_input_is_a_readable_400(client, api, form, message):
    login_as(client, "admin@demo.test")
    response = post_form(client, "/manage/branches/demo/services", form)
    assert response.status_code == 400 and message in response.data
    assert [s["code"] for s in api.call("GET", "/branches/demo/services").json] == ["A", "B", "C"]


def test_admin_adds_a_counter(client, api):
    login_as(client, "admin@demo.test")
    response = post_form(client, "/manage/branches/demo/counters", {"name": "Counter 4", "services": ["C", "A"]})
    assert response.status_code == 302
    assert counters_json(api)["Counter 4"]["state"] == "closed"
    assert sorted(counters_json(api)["Counter 4"]["services"]) == ["A", "C"]

    duplicate = post_form(client, "/manage/branches/demo/counters", {"name": "Counter 4"})
    assert duplicate.status_code == 400 and b"Counter &#39;Counter 4&#39; exists at &#39;demo&#39;." in duplicate.data


def test_admin_adds_a_staff_account_who_can_sign_in_and_then_disables_it(client, seeded):
    login_as(client, "admin@demo.test")
    short = post_form(client, "/manage/staff", {
        "email": "new.person@demo.test", "role": "staff", "branches": ["demo"], "password": "short"})
    assert short.status_code == 400 and b"at least 10 characters." in short.data

    response = post_form(client, "/manage/staff", {
        "email": "New.Person@demo.test", "name": "New Person", "role": "staff", "branches": ["demo"],
        "password": "a-long-password"})
    assert response.status_code == 302
    page = client.get("/manage/staff")
    assert b"Staff account New.Person@demo.test created." in page.data and b"new.person@demo.test" in page.data

    duplicate = post_form(client, "/manage/staff", {
        "email": "new.person@demo.test", "role": "staff", "branches": ["demo"], "password": "a-long-password"})
    assert duplicate.status_code == 400 and b"Staff new.person@demo.test already exists." in duplicate.data

    new_client = client.application.test_client()
    login_as(new_client, "new.person@demo.test", "a-long-password")
    assert b"Counter 1" in new_client.get("/staff").data

    staff_id = int(re.search(rb'new.person@demo.test</td>.*?/manage/staff/(\d+)/edit', page.data, re.S).group(1))
    edit_url = f"/manage/staff/{staff_id}/edit"
    short = post_form(client, edit_url, {"role": "staff", "branches": ["demo"], "active": "y", "password": "short"})
    assert short.status_code == 400 and b"at least 10 characters." in short.data

    # "active" left unticked: the account is disabled.
    response = post_form(client, edit_url, {"name": "New Person", "role": "manager", "branches": ["demo"],
                                            "password": ""})
    assert response.status_code == 302
    row = re.search(rb"<td>new.person@demo.test</td>.*?</tr>", client.get("/manage/staff").data, re.S).group(0)
    assert b"<td>Manager</td>" in row and b"<td>no</td>" in row
    # The open session ends and signing in fails.
    assert new_client.get("/staff").status_code == 302
    page = new_client.get("/login")
    refused = new_client.post("/login", data={"email": "new.person@demo.test", "password": "a-long-password",
                                              "csrf_token": csrf_token(page.data)})
    assert refused.status_code == 400


def test_posting_without_the_csrf_token_is_refused(client, api):
    login_as(client, "admin@demo.test")
    counter_id = api.counter_id("Counter 1")
    response = client.post(f"/manage/counters/{counter_id}", data={"state": "closed", "services": ["A"]})
    assert response.status_code == 400
    assert counters_json(api)["Counter 1"]["state"] == "open"
    response = client.post("/manage/branches/new", data={"slug": "north", "name": "North", "timezone": "UTC"})
    assert response.status_code == 400
    assert api.call("GET", "/branches/north").status_code == 404


def audit_rows(html: bytes) -> list[str]:
    """Each entry's time and one-line summary, as the page shows them."""
    text = html.decode()
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r'<tr data-entry="\d+">(.*?)</tr>', text, re.DOTALL)]


def test_audit_log_reads_as_sentences_in_branch_local_time(client, api, session):

    login_as(client, "admin@demo.test")
    service = next(s for s in api.call("GET", "/branches/demo/services").json if s["code"] == "A")
    response = post_form(client, f"/manage/services/{service['id']}/edit", {
        "name": service["name"], "expected_minutes": "12", "checklist": "", "walk_in_enabled": "y",
        "booking_enabled": "y", "active": "y"})
    assert response.status_code == 302
    manager = session.query(Staff).filter_by(email="manager@demo.test").one()
    # 23:30 UTC on 5 January is 07:30 on 6 January in Taipei (the demo branch's zone).
    audit.record(session, "customer.erased", "customer", 12, actor_id=manager.id, now=utc(2026, 1, 5, 23, 30))
    session.commit()

    page = client.get("/manage/audit")
    assert page.status_code == 200 and b"{&#34;" not in page.data  # no raw JSON on the line itself
    rows = audit_rows(page.data)
    changed = next(r for r in rows if "changed service" in r)
    assert "Ada Admin changed service A (Accounts and deposits): expected minutes 6 → 12" in changed
    erased = next(r for r in rows if "erased" in r)
    assert erased.startswith("2026-01-06 07:30:00") and "Max Manager erased customer #12" in erased
    assert b"<details class=\"audit-details\">" in page.data  # the stored details stay one click away


def test_audit_log_filters_by_action_staff_and_local_dates(client, api, session):

    manager = session.query(Staff).filter_by(email="manager@demo.test").one()
    admin = session.query(Staff).filter_by(email="admin@demo.test").one()
    audit.record(session, "customer.viewed", "customer", 7, actor_id=manager.id, now=utc(2026, 1, 5, 23, 30))
    audit.record(session, "customer.exported", "customer", 7, actor_id=admin.id, now=utc(2026, 1, 6, 2, 0))
    audit.record(session, "customer.erased", "customer", 8, actor_id=admin.id, now=utc(2026, 1, 7, 16, 30))
    session.commit()
    login_as(client, "admin@demo.test")

    def summaries(query):
        response = client.get("/manage/audit" + query)
        assert response.status_code == 200, query
        return [r for r in audit_rows(response.data) if "customer #" in r]

    assert len(summaries("?action=customer.exported")) == 1
    assert [("Max Manager" in r) for r in summaries(f"?staff={manager.id}")] == [True]
    # Local days: 5 Jan 23:30 UTC belongs to 6 Jan in Taipei, 7 Jan 16:30 UTC to 8 Jan.
    assert len(summaries("?from=2026-01-06&to=2026-01-06")) == 2
    assert len(summaries("?from=2026-01-07&to=2026-01-07")) == 0
    assert ["erased customer #8" in r for r in summaries("?from=2026-01-08")] == [True]
    assert len(summaries(f"?to=2026-01-06&staff={admin.id}&action=customer.exported")) == 1
    # Nonsense is ignored with a note, never a 500; reversed dates are swapped.
    for query, note in (("?action=drop.table", "Unknown action"), ("?staff=abc", "Unknown staff member"),
                        ("?staff=99999", "Unknown staff member"), ("?from=2026-13-40", "is not a date"),
                        ("?from=2026-01-08&to=2026-01-06", "dates were swapped")):
        response = client.get("/manage/audit" + query)
        assert response.status_code == 200 and note in response.get_data(as_text=True), query
    assert len(summaries("?from=2026-01-08&to=2026-01-06")) == 3
    assert client.get("/manage/audit?from=%00").status_code == 400
