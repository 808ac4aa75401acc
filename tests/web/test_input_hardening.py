"""Odd input gets a clear 4xx with a JSON error (or a refused page), never a 500, and changes nothing.

1. Regression tests, one per input that used to be a server error: extreme dates (year 1 and 9999
   with offsets +14:00 / -12:00: OverflowError), lone surrogates (UnicodeEncodeError in the
   database driver), NUL characters (PostgreSQL refuses them) and 5,000-deep JSON (RecursionError).
2. A property-based test (hypothesis): every API operation of the OpenAPI document with string or
   date fields in its body or query, sent generated nasty values, never answers 5xx.

The rules themselves live in queue_app/web/input_rules.py.
"""
import json
from urllib.parse import quote

import pytest
from helpers import book, booking_form, csrf_token, first_free_slot, login_as
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from queue_app.accounts.models import Staff
from queue_app.audit.models import AuditEntry
from queue_app.booking.models import Appointment
from queue_app.core.extensions import db
from queue_app.customers.models import Customer, Feedback
from queue_app.planning.models import StaffingPlan
from queue_app.tickets.models import Ticket

STAFF = "staff1@demo.test"
MANAGER = "manager@demo.test"
ADMIN = "admin@demo.test"
EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]
EXTREME_DAYS = ["0001-01-01", "9999-12-31"]
SURROGATE = "\ud800"
DEEP = "[" * 5000 + "]" * 5000


def snapshot(app) -> dict:
    """Row counts of what a refused request must not touch, and every appointment's time and sequence."""
    with app.app_context():
        counts = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                  for model in (Appointment, Customer, Ticket, Staff, AuditEntry)}
        counts["appointments"] = sorted(db.session.execute(
            select(Appointment.id, Appointment.start_at, Appointment.sequence, Appointment.status)).all())
        counts["overrides"] = sorted(db.session.execute(
            select(StaffingPlan.id, StaffingPlan.counters_override, StaffingPlan.booking_slots_override)).all())
        return counts


def assert_refused(response, status=None):
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:300])
    if status is not None:
        assert response.status_code == status, response.data[:300]
    assert response.is_json, response.data[:300]
    error = response.json["error"]
    assert error["code"] and error["message"]
    return error


def raw_json(client, method, url, text, headers=None):
    """Send JSON text as it is (json.dumps writes a lone surrogate as the escape \\ud800)."""
    return client.open(url, method=method, data=text, content_type="application/json", headers=headers or {})


# --- 1. regressions -------------------------------------------------------------------------------
# Each used to be a 500. Several cases share one test (one seeded database) to keep the file fast.

def test_extreme_starts_on_booking_and_reschedule_are_refused(api, app):
    made = book(api, first_free_slot(api)["start"])
    assert made.status_code == 201, made.json
    before = snapshot(app)
    for start in EXTREME_TIMES:
        created = book(api, start)
        assert assert_refused(created, 422)["code"] == "invalid_time", start
        moved = api.call("PATCH", f"/appointments/{made.json['manage_token']}", json={"start": start})
        assert assert_refused(moved, 422)["code"] == "invalid_time", start
    assert snapshot(app) == before


def test_extreme_days_in_queries_are_refused(api, app):
    before = snapshot(app)
    for day in EXTREME_DAYS:
        availability = api.call("GET", f"/branches/demo/availability?service=B&from={day}")
        assert "from" in assert_refused(availability, 422)["fields"]["query"], day
        for path, email in (("appointments", STAFF), ("forecast", MANAGER), ("staffing", MANAGER)):
            response = api.call("GET", f"/branches/demo/{path}?date={day}", email)
            assert assert_refused(response, 422)["code"] == "validation_failed", (path, day)
    for path in ("feedback", "stats"):
        for query in ("from=0001-01-01", "to=9999-12-31", "from=9999-12-30&to=9999-12-31",
                      "from=0001-01-01&to=0001-01-02"):
            response = api.call("GET", f"/branches/demo/{path}?{query}", MANAGER)
            assert assert_refused(response, 422)["code"] == "validation_failed", (path, query)
    assert snapshot(app) == before


def test_a_staffing_override_at_an_extreme_time_is_refused(api, app):
    assert api.call("POST", "/branches/demo/staffing/recompute", MANAGER).status_code == 200
    before = snapshot(app)
    for start in EXTREME_TIMES:
        response = api.call("PUT", "/branches/demo/staffing", MANAGER, json={"start": start, "counters": 1})
        assert "start" in assert_refused(response, 422)["fields"]["json"], start
    assert snapshot(app) == before


def test_lone_surrogates_are_refused_by_the_api(api, app):
    start = first_free_slot(api)["start"]
    before = snapshot(app)
    token = raw_json(api.client, "POST", "/api/v1/auth/token",
                     json.dumps({"email": SURROGATE + "@demo.test", "password": "demo-password"}))
    assert "email" in assert_refused(token, 422)["fields"]["json"]
    for field in ("name", "service", "phone", "email"):
        body = {"service": "B", "start": start, "name": "Chen", "phone": "+886912345678"}
        body[field] = SURROGATE if field != "email" else SURROGATE + "@example.com"
        booked = raw_json(api.client, "POST", "/api/v1/branches/demo/appointments", json.dumps(body))
        assert field in assert_refused(booked, 422)["fields"]["json"], field
    kiosk_headers = api.headers("kiosk")
    check_in = raw_json(api.client, "POST", "/api/v1/branches/demo/check-in",
                        json.dumps({"code": "ABCD" + SURROGATE}), kiosk_headers)
    assert "code" in assert_refused(check_in, 422)["fields"]["json"]
    ticket = raw_json(api.client, "POST", "/api/v1/branches/demo/tickets", json.dumps({"service": SURROGATE}),
                      kiosk_headers)
    assert "service" in assert_refused(ticket, 422)["fields"]["json"]
    assert snapshot(app) == before


def test_lone_surrogates_are_refused_by_the_booking_page_and_the_kiosk(client, api, app, kiosk):  # noqa: F811
    headers = {"X-CSRFToken": kiosk}
    data = booking_form(client)
    start = first_free_slot(api)["start"]
    before = snapshot(app)
    for field in ("name", "service", "email", "start"):
        body = {"service": "B", "start": start, "name": "Chen", "phone": "+886912345678", "website": "", field: SURROGATE}
        response = raw_json(client, "POST", data["book_url"], json.dumps(body), {"X-CSRFToken": data["csrf_token"]})
        assert_refused(response, 422)
    assert_refused(raw_json(client, "POST", "/kiosk/demo/tickets", json.dumps({"service": SURROGATE}), headers), 400)
    assert_refused(raw_json(client, "POST", "/kiosk/demo/check-in", json.dumps({"code": SURROGATE * 8}), headers), 400)
    assert snapshot(app) == before


def test_deeply_nested_json_is_malformed_on_the_api(api, app):
    before = snapshot(app)
    nested_in_a_field = '{"service": "B", "name": ' + DEEP + "}"
    for method, path, email in (("POST", "/auth/token", None), ("POST", "/branches/demo/appointments", None),
                                ("POST", "/branches/demo/tickets", "kiosk"), ("PATCH", "/branches/demo", ADMIN),
                                ("PATCH", "/branches/demo/customer-rules", MANAGER)):
        for text in (DEEP, nested_in_a_field):
            response = raw_json(api.client, method, "/api/v1" + path, text, api.headers(email))
            assert assert_refused(response, 400)["code"] == "malformed_json", (method, path)
    assert snapshot(app) == before


def test_deeply_nested_json_is_malformed_on_the_pages(client, app, api, kiosk):  # noqa: F811
    before = snapshot(app)
    headers = {"X-CSRFToken": kiosk}
    for url in ("/kiosk/demo/tickets", "/kiosk/demo/check-in"):
        assert assert_refused(raw_json(client, "POST", url, DEEP, headers), 400)["code"] == "malformed_json"
    data = booking_form(client)
    booked = raw_json(client, "POST", data["book_url"], DEEP, {"X-CSRFToken": data["csrf_token"]})
    assert assert_refused(booked, 400)["code"] == "malformed_json"
    login_as(client, MANAGER)
    token = csrf_token(client.get("/manage/branches/demo/dashboard").data)
    what_if = raw_json(client, "POST", "/manage/branches/demo/what-if", DEEP, {"X-CSRFToken": token})
    assert assert_refused(what_if, 400)["code"] == "malformed_json"
    assert snapshot(app) == before


def test_shallow_json_with_brackets_in_strings_is_still_read(api):
    """The depth check counts structure, not brackets inside strings."""
    slot = first_free_slot(api)
    response = book(api, slot["start"], name="[" * 80 + "{Chen}" + "]" * 80)
    assert response.status_code == 201, response.json


# --- NUL characters: PostgreSQL cannot store them; pages and API refuse them everywhere ----------

def test_nul_characters_are_refused_by_api_and_pages(api, app, client):
    before = snapshot(app)
    token = api.call("POST", "/auth/token", json={"email": STAFF + "\x00", "password": "demo-password"})
    assert "email" in assert_refused(token, 422)["fields"]["json"]
    search = api.call("GET", "/branches/demo/customers?q=ab%00cd", STAFF)
    assert "q" in assert_refused(search, 422)["fields"]["query"]
    audit = api.call("GET", "/audit?target_type=ticket%00", ADMIN)
    assert assert_refused(audit, 422)["code"] == "validation_failed"
    assert api.call("GET", "/branches/de%00mo").status_code == 404
    page = client.get("/login")
    signed_in = client.post("/login", data={"email": STAFF + "\x00", "password": "demo-password",
                                            "csrf_token": csrf_token(page.data)})
    assert signed_in.status_code == 400 and b"cannot be saved" in signed_in.data
    assert snapshot(app) == before


def test_extreme_and_nul_values_on_manager_pages_are_refused(client, api, app):
    assert api.call("POST", "/branches/demo/staffing/recompute", MANAGER).status_code == 200
    login_as(client, MANAGER)
    before = snapshot(app)
    for query in ("from=9999-12-30&to=9999-12-31", "from=0001-01-01&to=0001-01-02", "to=9999-12-31"):
        page = client.get(f"/manage/branches/demo/dashboard?{query}")
        assert page.status_code == 200 and b"2100-12-31" in page.data  # the range error is shown
        assert_refused(client.get(f"/manage/branches/demo/stats.csv?{query}"), 400)
    token = csrf_token(client.get("/manage/branches/demo/dashboard").data)
    for starts_at in EXTREME_TIMES:
        response = client.post("/manage/branches/demo/plan/override",
                               data={"starts_at": starts_at, "counters": "1", "csrf_token": token})
        assert response.status_code == 302  # back to the plan with a message; nothing changed
    assert snapshot(app) == before
    login_as(client, ADMIN)
    assert client.get("/manage/audit?target_type=x%00").status_code == 400


def test_a_nul_in_a_feedback_comment_is_refused_on_the_phone_page_and_the_api(api, app, client):
    ticket = api.issue("A")
    api.call("POST", f"/counters/{api.counter_id('Counter 1')}/call-next", STAFF)
    assert api.call("POST", f"/tickets/{ticket['id']}/finish", STAFF).status_code == 200
    url = f"/t/{ticket['token']}/feedback"
    form = client.get(url).get_data(as_text=True)
    csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
    sent = client.post(url, data={"rating": "4", "nps": "8", "comment": "fine\x00", "csrf_token": csrf})
    assert sent.status_code == 400 and "cannot be saved" in sent.get_data(as_text=True)
    answered = api.call("POST", f"/tickets/{ticket['token']}/feedback", json={"rating": 4, "comment": "fine\x00"})
    assert "comment" in assert_refused(answered, 422)["fields"]["json"]
    with app.app_context():
        assert db.session.scalar(select(Feedback.answered_at).where(Feedback.ticket_id == ticket["id"])) is None


# --- 2. property-based: every operation of the OpenAPI document ----------------------------------

NASTY_TEXT = [
    SURROGATE, "a\udfffb", "\udc80" * 3, "\x00", "abc\x00", " \x00 ", "x" * 5000, "é" * 20_000, "",
    " ", "\u202e\u200b", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "' OR 1=1 --", "%00", "\\ud800",
]
NASTY_DATES = [
    "0001-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59",
    "2026-02-30", "2026-12-01T25:00:00+08:00", "2026-12-01T10:00:00+23:59", "2026-12-01T10:00:00+05:30:15",
    "1999-12-31", "2101-01-01", "2026-12-01T10:00:00Z", "20261201", "2026-W49-1", "9" * 40,
]


def nasty_strings():
    days = st.dates().map(lambda d: d.isoformat())
    offsets = st.sampled_from(["+14:00", "-12:00", "Z", "", "+00:00", "+23:59", "-23:59"])
    moments = st.builds(lambda moment, offset: moment.isoformat() + offset,
                        st.datetimes(), offsets)
    return st.one_of(
        st.sampled_from(NASTY_TEXT + NASTY_DATES), days, moments,
        st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lo", "Nd"]), max_size=40),
        st.text(max_size=10).map(lambda s: s * 300),
    )


class Deep:
    """A value written as `levels` nested arrays (json.dumps would recurse)."""

    def __init__(self, levels: int):
        self.levels = levels

    def text(self) -> str:
        return "[" * self.levels + "]" * self.levels


def encode(value) -> str:
    if isinstance(value, Deep):
        return value.text()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def is_texty(spec: dict, schema: dict) -> bool:
    schema = resolve(spec, schema)
    if schema.get("type") == "string":
        return True
    if schema.get("type") == "array":
        return is_texty(spec, schema.get("items", {}))
    if schema.get("type") == "object" or "properties" in schema:
        return any(is_texty(spec, p) for p in schema.get("properties", {}).values()) or \
            bool(schema.get("additionalProperties"))
    return False


def plausible(spec: dict, schema: dict):
    """A value of the right shape (so that the nasty one is what gets looked at)."""
    schema = resolve(spec, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        return {"date": "2026-12-01", "date-time": "2026-12-01T10:00:00+08:00",
                "email": "someone@example.com"}.get(schema.get("format"), "B")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    if kind == "array":
        return [plausible(spec, schema.get("items", {}))]
    if kind == "object" or "properties" in schema:
        return {name: plausible(spec, p) for name, p in schema.get("properties", {}).items()}
    return "B"


def nasty_like(spec: dict, schema: dict, data):
    """The field's shape with nasty strings in it (or nesting deeper than the cap)."""
    schema = resolve(spec, schema)
    if data.draw(st.integers(0, 19)) == 0:
        return Deep(data.draw(st.sampled_from([33, 200, 5000])))
    kind = schema.get("type")
    if kind == "array":
        return [nasty_like(spec, schema.get("items", {}), data)]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if not properties:
            return {data.draw(nasty_strings()): data.draw(nasty_strings())}
        return {name: (nasty_like(spec, p, data) if is_texty(spec, p) and data.draw(st.booleans())
                       else plausible(spec, p)) for name, p in properties.items()}
    return data.draw(nasty_strings())


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    """(method, path, operation) of every operation with string or date fields in its body or query."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = [p for p in operation.get("parameters", []) + item.get("parameters", [])
                     if p.get("in") == "query" and is_texty(spec, p.get("schema", {}))]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if query or (body and is_texty(spec, body)):
                found.append((method.upper(), path, operation))
    return found


def fill_path(path: str, known: dict) -> str:
    for name, value in known.items():
        path = path.replace("{" + name + "}", str(value))
    return path


@pytest.fixture
def known_ids(api, app):
    """Path parameters that name real rows, so requests get past the 404s to the fields."""
    slot = first_free_slot(api)
    made = book(api, slot["start"]).json
    ticket = api.issue("A")
    webhook = api.call("POST", "/branches/demo/webhooks", MANAGER,
                       json={"url": "https://example.com/hook", "event_types": ["ticket.issued"]})
    assert webhook.status_code == 201, webhook.json
    with app.app_context():
        customer = db.session.scalar(select(Customer.id))
        staff = db.session.scalar(select(Staff.id).where(Staff.email == STAFF))
    return {"slug": "demo", "token": made["manage_token"], "ticket_id": ticket["id"], "customer_id": customer,
            "service_id": 1, "counter_id": 1, "staff_id": staff, "endpoint_id": webhook.json["id"], "delivery_id": 1,
            "alert_id": 1}


EXAMPLES = 15  # per operation: about 500 requests, some seconds


def test_generated_nasty_values_never_get_a_server_error(api, app, known_ids):
    spec = api.call("GET", "/openapi.json").json
    found = operations(spec)
    assert len(found) >= 20, [f"{m} {p}" for m, p, _ in found]
    # Generated requests must reach the field checks: a valid admin token for every staff endpoint
    # (PATCH /staff/{staff_id} edits staff1, not the admin whose token is used).
    headers = api.headers(ADMIN)
    kiosk_headers = api.headers("kiosk")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a server error is a 500 answer here, not a raised exception
    seen = []

    for method, path, operation in found:
        url = fill_path(path, known_ids)  # the document's paths start with /api/v1
        query_params = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
        body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        use = kiosk_headers if path.endswith("/kiosk/heartbeat") else headers

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def check(data):
            query = {}
            for parameter in query_params:
                texty = is_texty(spec, parameter.get("schema", {}))
                if texty and data.draw(st.booleans()):
                    query[parameter["name"]] = data.draw(nasty_strings())
                elif parameter.get("required"):
                    query[parameter["name"]] = plausible(spec, parameter.get("schema", {}))
            query_text = "&".join(f"{quote(str(k))}={quote(str(v), errors='surrogatepass')}"
                                  for k, v in query.items())
            kwargs = {}
            if body_schema is not None:
                body = nasty_like(spec, body_schema, data)
                kwargs = {"data": encode(body), "content_type": "application/json"}
            response = api.client.open(url + ("?" + query_text if query_text else ""), method=method,
                                       headers=use, **kwargs)
            seen.append(response.status_code)
            assert response.status_code < 500, (method, url, query, kwargs.get("data", "")[:300],
                                                response.data[:500])

        check()
    assert len(seen) >= EXAMPLES * len(found) // 2  # hypothesis really sent them
    assert sum(400 <= status < 500 for status in seen) > len(seen) // 2  # and most were refused
