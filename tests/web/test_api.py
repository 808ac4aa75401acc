"""Every REST endpoint: its success case and its refusals, through the Flask test client."""
import pytest

STAFF = "staff1@demo.test"
MANAGER = "manager@demo.test"
ADMIN = "admin@demo.test"


def error_code(response):
    assert response.is_json, response.data[:200]
    return response.json["error"]["code"]


def test_token_issue_and_refusals(api):
    assert api.call("POST", "/auth/token", json={"email": STAFF, "password": "demo-password"}).status_code == 200
    wrong = api.call("POST", "/auth/token", json={"email": STAFF, "password": "nope"})
    assert (wrong.status_code, error_code(wrong)) == (401, "bad_credentials")
    unknown = api.call("POST", "/auth/token", json={"email": "ghost@demo.test", "password": "demo-password"})
    assert unknown.status_code == 401
    missing = api.call("POST", "/auth/token", json={"email": STAFF})
    assert missing.status_code == 422 and "password" in missing.json["error"]["fields"]["json"]


def test_catalogue_is_public(api):
    branches = api.call("GET", "/branches")
    assert branches.status_code == 200 and [b["slug"] for b in branches.json] == ["demo"]
    assert branches.json[0]["timezone"] == "Asia/Taipei"
    services = api.call("GET", "/branches/demo/services")
    assert [s["code"] for s in services.json] == ["A", "B", "C"]
    assert "Photo ID" in services.json[1]["checklist"]
    assert error_code(api.call("GET", "/branches/nowhere/services")) == "branch_not_found"
    assert api.call("GET", "/branches/nowhere").status_code == 404


def test_counters_need_staff_of_the_branch(api):
    assert api.call("GET", "/branches/demo/counters").status_code == 401
    assert api.call("GET", "/branches/demo/counters").headers["WWW-Authenticate"] == "Bearer"
    counters = api.call("GET", "/branches/demo/counters", STAFF)
    assert counters.status_code == 200
    assert {c["name"]: c["services"] for c in counters.json}["Counter 1"] == ["A", "C"]
    bad = api.client.get("/api/v1/branches/demo/counters", headers={"Authorization": "Bearer x.y.z"})
    assert (bad.status_code, error_code(bad)) == (401, "token_invalid")
    # A kiosk token is not a staff token.
    assert error_code(api.call("GET", "/branches/demo/counters", "kiosk")) == "staff_only"


def test_issue_ticket_by_kiosk(api):
    ticket = api.issue("B")
    assert ticket["label"] == "B001" and ticket["status"] == "waiting" and ticket["position"] == 1
    assert ticket["track_url"] == f"http://kiosk.test/t/{ticket['token']}"
    assert set(ticket["estimate"]) == {"state", "minutes", "low", "high", "opens_at"}
    second = api.issue("B")
    assert (second["label"], second["position"], second["ahead"]) == ("B002", 2, 1)
    # Two open counters serve B and both are free: the first two are called at once...
    assert (second["estimate"]["state"], second["estimate"]["minutes"]) == ("waiting", 0)
    # ...the third waits for a visit to end.
    third = api.issue("B")
    assert third["estimate"]["minutes"] > 0 and third["estimate"]["low"] <= third["estimate"]["minutes"]
    assert third["estimate"]["minutes"] <= third["estimate"]["high"]
    assert "+08:00" in second["issued_at"]  # branch local time with its offset


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"service": "Z"}, 404, "service_not_found"),
        ({}, 422, "validation_failed"),
        ({"service": "A", "priority": "vip"}, 422, "validation_failed"),
        ({"service": "A", "surprise": 1}, 422, "validation_failed"),
        ({"service": 7}, 422, "validation_failed"),
    ],
)
def test_issue_ticket_refuses_bad_bodies(api, body, status, code):
    response = api.call("POST", "/branches/demo/tickets", "kiosk", json=body)
    assert (response.status_code, error_code(response)) == (status, code)


def test_issue_ticket_refuses_malformed_json_anonymous_and_other_branch(api, client):
    malformed = api.call("POST", "/branches/demo/tickets", "kiosk", data="{", content_type="application/json")
    assert (malformed.status_code, error_code(malformed)) == (400, "malformed_json")
    anonymous = api.call("POST", "/branches/demo/tickets", json={"service": "A"})
    assert (anonymous.status_code, error_code(anonymous)) == (401, "token_missing")
    assert api.call("POST", "/branches/nowhere/tickets", "kiosk", json={"service": "A"}).status_code == 404
    api.call("POST", "/branches", ADMIN, json={"slug": "north", "name": "North", "timezone": "Asia/Hong_Kong"})
    api.call("POST", "/branches/north/services", ADMIN, json={"code": "A", "name": "Accounts"})
    other = api.call("POST", "/branches/north/tickets", "kiosk", json={"service": "A"})
    assert (other.status_code, error_code(other)) == (403, "other_branch")
    forged = client.post("/api/v1/branches/demo/tickets", json={"service": "A"},
                         headers={"Authorization": "Bearer not-a-device"})
    assert (forged.status_code, error_code(forged)) == (401, "token_invalid")


def test_remote_tickets_when_the_branch_allows_them(api):
    assert api.call("PATCH", "/branches/demo", ADMIN, json={"allow_remote_tickets": True}).status_code == 200
    response = api.call("POST", "/branches/demo/tickets", json={"service": "C"})
    assert response.status_code == 201 and response.json["label"] == "C001"


def test_track_and_leave_by_token(api):
    ticket = api.issue("A")
    tracked = api.call("GET", f"/tickets/{ticket['token']}")
    assert tracked.status_code == 200 and tracked.json["status"] == "waiting" and tracked.json["label"] == "A001"
    assert "phone" not in tracked.json and "id" not in tracked.json
    assert error_code(api.call("GET", "/tickets/not-a-token")) == "ticket_not_found"
    left = api.call("DELETE", f"/tickets/{ticket['token']}")
    assert left.status_code == 200 and left.json["status"] == "cancelled"
    again = api.call("DELETE", f"/tickets/{ticket['token']}")
    assert (again.status_code, error_code(again)) == (409, "wrong_state")


def test_call_next_and_every_ticket_action(api):
    counter = api.counter_id("Counter 2")  # serves A and B
    assert api.call("POST", f"/counters/{counter}/call-next", STAFF).status_code == 204
    first, second = api.issue("A"), api.issue("B")
    called = api.call("POST", f"/counters/{counter}/call-next", STAFF)
    assert called.status_code == 200 and called.json["id"] == first["id"] and called.json["counter"] == "Counter 2"
    assert "Photo ID" in called.json["checklist"]
    busy = api.call("POST", f"/counters/{counter}/call-next", STAFF)
    assert (busy.status_code, error_code(busy)) == (409, "counter_busy")
    assert api.call("POST", f"/tickets/{first['id']}/recall", STAFF).json["recalls"] == 1
    assert api.call("POST", f"/tickets/{first['id']}/start", STAFF).json["status"] == "serving"
    transferred = api.call("POST", f"/tickets/{first['id']}/transfer", STAFF, json={"service": "C"})
    assert transferred.status_code == 200 and transferred.json["service"] == "C"
    assert transferred.json["status"] == "waiting"
    bad_transfer = api.call("POST", f"/tickets/{first['id']}/transfer", STAFF, json={"service": "Q"})
    assert bad_transfer.status_code == 404
    empty_transfer = api.call("POST", f"/tickets/{first['id']}/transfer", STAFF, json={})
    assert empty_transfer.status_code == 422
    nxt = api.call("POST", f"/counters/{counter}/call-next", STAFF)
    assert nxt.json["id"] == second["id"]
    assert api.call("POST", f"/tickets/{second['id']}/no-show", STAFF).json["status"] == "no_show"
    wrong = api.call("POST", f"/tickets/{second['id']}/finish", STAFF)
    assert (wrong.status_code, error_code(wrong)) == (409, "wrong_state")
    c1 = api.counter_id("Counter 1")  # serves C
    assert api.call("POST", f"/counters/{c1}/call-next", STAFF).json["id"] == first["id"]
    assert api.call("POST", f"/tickets/{first['id']}/finish", STAFF).json["status"] == "done"
    assert api.call("POST", f"/tickets/{first['id']}/finish", STAFF).status_code == 409


def test_ticket_actions_are_refused_to_strangers(api):
    ticket = api.issue("A")
    counter = api.counter_id("Counter 1")
    assert api.call("POST", f"/counters/{counter}/call-next").status_code == 401
    assert api.call("POST", f"/counters/{counter}/call-next", "kiosk").status_code == 403
    assert api.call("POST", "/counters/9999/call-next", STAFF).status_code == 404
    assert api.call("POST", f"/tickets/{ticket['id']}/finish").status_code == 401
    assert api.call("POST", "/tickets/9999/finish", STAFF).status_code == 404
    # Staff of another branch.
    api.call("POST", "/branches", ADMIN, json={"slug": "north", "name": "North", "timezone": "Asia/Hong_Kong"})
    api.call("POST", "/staff", ADMIN, json={"email": "north@demo.test", "password": "demo-password",
                                              "role": "staff", "branches": ["north"]})
    outsider = "north@demo.test"
    for method, path in [("POST", f"/counters/{counter}/call-next"), ("POST", f"/tickets/{ticket['id']}/start"),
                         ("GET", "/branches/demo/counters"), ("GET", "/branches/demo/queue")]:
        response = api.call(method, path, outsider)
        assert (response.status_code, error_code(response)) == (403, "other_branch"), path


def test_queue_view_for_staff_and_branch_devices(api):
    api.issue("A")
    api.issue("A")
    api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", STAFF)
    for who in (STAFF, "kiosk"):
        queue = api.call("GET", "/branches/demo/queue", who)
        assert queue.status_code == 200
        assert {w["service"]: w["count"] for w in queue.json["waiting"]} == {"A": 1, "B": 0, "C": 0}
        now_serving = {c["name"]: c["ticket"] for c in queue.json["counters"]}
        assert now_serving["Counter 1"]["label"] == "A001"
    assert api.call("GET", "/branches/demo/queue").status_code == 401


def test_manager_opens_closes_counters_and_sets_services(api):
    counter = api.counter_id("Counter 3")
    assert api.call("PATCH", f"/counters/{counter}", STAFF, json={"state": "closed"}).status_code == 403
    response = api.call("PATCH", f"/counters/{counter}", MANAGER, json={"state": "paused", "services": ["c", "A"]})
    assert response.status_code == 200 and response.json == {"id": counter, "name": "Counter 3", "state": "paused",
                                                             "names": {"zh_Hant": "3 號櫃檯", "zh_Hans": "3 号柜台"},
                                                             "services": ["C", "A"]}
    assert api.call("PATCH", f"/counters/{counter}", MANAGER, json={"state": "broken"}).status_code == 422
    assert api.call("PATCH", f"/counters/{counter}", MANAGER, json={"services": ["Q"]}).status_code == 422
    assert api.call("PATCH", f"/counters/{counter}", MANAGER, json={"name": "VIP"}).status_code == 403
    assert api.call("PATCH", "/counters/9999", MANAGER, json={"state": "open"}).status_code == 404
    paused = api.call("POST", f"/counters/{counter}/call-next", STAFF)
    assert (paused.status_code, error_code(paused)) == (409, "counter_not_open")


def test_admin_manages_branches_services_counters_and_staff(api):
    created = api.call("POST", "/branches", ADMIN, json={
        "slug": "east", "name": "East", "timezone": "America/New_York",
        "opening_hours": {"mon": [["09:00", "17:00"]]}, "closed_dates": ["2026-12-25"]})
    assert created.status_code == 201 and created.json["opening_hours"] == {"mon": [["09:00", "17:00"]]}
    assert api.call("POST", "/branches", ADMIN, json={"slug": "east", "name": "E", "timezone": "UTC"}).status_code == 409
    assert api.call("POST", "/branches", MANAGER, json={"slug": "west", "name": "W", "timezone": "UTC"}).status_code == 403
    bad_zone = api.call("POST", "/branches", ADMIN, json={"slug": "west", "name": "W", "timezone": "Mars/Base"})
    assert (bad_zone.status_code, error_code(bad_zone)) == (422, "invalid_field")
    bad_hours = api.call("PATCH", "/branches/east", ADMIN, json={"opening_hours": {"mon": [["18:00", "09:00"]]}})
    assert bad_hours.status_code == 422
    assert api.call("PATCH", "/branches/east", ADMIN, json={"closed_dates": ["not-a-date"]}).status_code == 422
    service = api.call("POST", "/branches/east/services", ADMIN, json={
        "code": "d", "name": "Documents", "expected_minutes": 12, "checklist": "Passport"})
    assert service.status_code == 201 and service.json["code"] == "D"
    assert api.call("POST", "/branches/east/services", ADMIN, json={"code": "D", "name": "Again"}).status_code == 409
    assert api.call("POST", "/branches/east/services", ADMIN, json={"code": "D1", "name": "X"}).status_code == 422
    edited = api.call("PATCH", f"/services/{service.json['id']}", ADMIN, json={"expected_minutes": 15})
    assert edited.json["expected_minutes"] == 15
    assert api.call("PATCH", "/services/9999", ADMIN, json={"name": "X"}).status_code == 404
    counter = api.call("POST", "/branches/east/counters", ADMIN, json={"name": "Desk 1", "services": ["D"], "state": "open"})
    assert counter.status_code == 201 and counter.json["services"] == ["D"]
    staff = api.call("POST", "/staff", ADMIN, json={"email": "East@Demo.test", "password": "long-enough-pw",
                                                     "role": "manager", "branches": ["east"]})
    assert staff.status_code == 201 and staff.json["email"] == "east@demo.test"
    assert api.call("POST", "/staff", ADMIN, json={"email": "x@demo.test", "password": "short", "role": "staff"}).status_code == 422
    assert api.call("POST", "/staff", ADMIN, json={"email": "y@demo.test", "password": "long-enough-pw", "role": "staff",
                                                   "branches": ["nowhere"]}).status_code == 404
    assert api.call("GET", "/staff", MANAGER).status_code == 403
    assert "east@demo.test" in [s["email"] for s in api.call("GET", "/staff", ADMIN).json]
    # A password change ends the old token.
    token = api.client.post("/api/v1/auth/token", json={"email": "east@demo.test", "password": "long-enough-pw"}).json["token"]
    assert api.call("PATCH", f"/staff/{staff.json['id']}", ADMIN, json={"password": "another-long-pw"}).status_code == 200
    stale = api.client.get("/api/v1/branches/east/counters", headers={"Authorization": f"Bearer {token}"})
    assert (stale.status_code, error_code(stale)) == (401, "token_invalid")


def test_unknown_api_routes_and_methods_answer_json(api):
    missing = api.call("GET", "/nothing-here")
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    wrong_method = api.call("PUT", "/branches")
    assert (wrong_method.status_code, error_code(wrong_method)) == (405, "method_not_allowed")


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json["paths"]
    for path in ("/api/v1/auth/token", "/api/v1/branches/{slug}/tickets", "/api/v1/tickets/{token}",
                 "/api/v1/counters/{counter_id}/call-next", "/api/v1/tickets/{ticket_id}/no-show",
                 "/api/v1/branches/{slug}/queue"):
        assert path in paths, path
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/static/vendor/redoc.standalone.js" in docs.data
    with client.get("/static/vendor/redoc.standalone.js") as script:  # vendored: no CDN in a lobby
        assert script.status_code == 200


def test_two_apps_in_one_process_keep_their_own_api_document(app, client, tmp_path):
    """The API (flask-smorest) is made per app, not shared at module level: a second app built in
    the same process, as a test or a second instance does, leaves the first one's document alone."""
    from helpers import TEST_CONFIG

    from queue_app import create_app

    other = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/other.sqlite",
                        "API_TITLE": "Another branch network"})
    assert other.test_client().get("/api/v1/openapi.json").json["info"]["title"] == "Another branch network"
    first = client.get("/api/v1/openapi.json").json
    assert first["info"]["title"] == "Queue app API"
    assert "/api/v1/counters/{counter_id}/call-next" in first["paths"]


def test_the_last_admin_cannot_be_demoted_or_disabled(api):
    admin_id = next(s["id"] for s in api.call("GET", "/staff", ADMIN).json if s["email"] == ADMIN)
    demoted = api.call("PATCH", f"/staff/{admin_id}", ADMIN, json={"role": "manager"})
    assert (demoted.status_code, error_code(demoted)) == (409, "last_admin")
    assert api.call("PATCH", f"/staff/{admin_id}", ADMIN, json={"active": False}).status_code == 409


def test_a_ticket_with_a_phone_number_is_attached_to_one_customer(app, api):
    from sqlalchemy import select

    from queue_app.core.extensions import db
    from queue_app.customers.models import Customer
    from queue_app.tickets.models import Ticket

    first = api.issue("A", phone="+886 912-345-678")
    second = api.issue("C", phone="+886912345678", email="Mei@Example.com")
    bad = api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A", "phone": "call me"})
    assert (bad.status_code, error_code(bad)) == (422, "invalid_field")
    with app.app_context():
        customers = db.session.scalars(select(Customer)).all()
        owners = {t.id: t.customer_id for t in db.session.scalars(select(Ticket))}
        typed = {t.id: (t.phone, t.email) for t in db.session.scalars(select(Ticket))}
    # The record keeps what it was made with; each ticket keeps what was typed on it (identity.py).
    assert [(c.phone, c.email) for c in customers] == [("+886912345678", None)]
    assert typed[second["id"]] == ("+886912345678", "mei@example.com")
    assert owners[first["id"]] == owners[second["id"]] == customers[0].id
    tracked = api.call("GET", f"/tickets/{first['token']}")
    assert "912345678" not in tracked.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/tickets/9999999999999999999/start", "/counters/65726520334332542976/call-next"])
def test_ids_beyond_a_database_integer_are_not_found_not_a_crash(api, path):
    response = api.call("POST", path, STAFF)
    assert (response.status_code, error_code(response)) == (404, "not_found")
