"""Permission matrix generated from the URL map: every route x every kind of caller.

A route missing from POLICY fails `test_every_route_has_a_policy`, so a new endpoint cannot land
without a decision about who may call it.
"""
import itertools

import pytest

from queue_app.accounts.models import Staff
from queue_app.catalogue.models import Counter, Service
from queue_app.customers.models import Customer

CALLERS = ("anonymous", "kiosk", "other_branch_staff", "staff", "manager", "admin")
ALL = set(CALLERS)
STAFF_UP = {"staff", "manager", "admin"}
BRANCH_DEVICES = STAFF_UP | {"kiosk"}

# endpoint -> callers that may use it (everyone else gets 401 or 403)
POLICY = {
    "api_auth.create_token": ALL,
    "api_catalogue.list_branches": ALL, "api_catalogue.get_branch": ALL, "api_catalogue.list_services": ALL,
    "api_booking.availability": ALL, "api_booking.get_appointment": ALL,
    "api_booking.reschedule_appointment": ALL, "api_booking.cancel_appointment": ALL,
    "api_tickets.track_ticket": ALL, "api_tickets.leave_queue": ALL, "api_tickets.postpone": ALL,
    "api_booking.create_appointment": {"anonymous"} | STAFF_UP,  # a device token is not a customer
    "api_tickets.issue_ticket": BRANCH_DEVICES,  # anonymous only where the branch allows remote tickets
    "api_booking.check_in": BRANCH_DEVICES, "api_tickets.branch_queue": BRANCH_DEVICES,
    "api_catalogue.list_counters": STAFF_UP, "api_tickets.counter_detail": STAFF_UP,
    "api_tickets.call_next": STAFF_UP, "api_tickets.ticket_recall": STAFF_UP, "api_tickets.ticket_start": STAFF_UP,
    "api_tickets.ticket_finish": STAFF_UP, "api_tickets.ticket_no_show": STAFF_UP, "api_tickets.transfer": STAFF_UP,
    "api_booking.day_appointments": STAFF_UP,
    "api_catalogue.update_counter": {"manager", "admin"}, "api_booking.unblock_customer": {"manager", "admin"},
    "api_catalogue.create_branch": {"admin"}, "api_catalogue.update_branch": {"admin"},
    "api_catalogue.create_service": {"admin"}, "api_catalogue.update_service": {"admin"},
    "api_catalogue.create_counter": {"admin"}, "api_catalogue.list_staff": {"admin"},
    "api_catalogue.create_staff": {"admin"}, "api_catalogue.update_staff": {"admin"},
    "api_kiosks.pair": ALL,  # the device has no credentials yet: the one-time code is the credential
    "api_kiosks.heartbeat": {"kiosk"},
    # Customer records (customers.visible_branches): staff reach today's customers of their branches.
    "api_customers.search_customers": STAFF_UP, "api_customers.get_customer": STAFF_UP,
    "api_customers.customer_history": STAFF_UP, "api_customers.ticket_customer": STAFF_UP,
    "api_customers.attach_customer": STAFF_UP,
    "api_customers.export_customer": {"manager", "admin"}, "api_customers.erase_customer": {"manager", "admin"},
    "api_customers.merge_customers": {"manager", "admin"}, "api_customers.feedback_summary": {"manager", "admin"},
    "api_customers.segments": {"manager", "admin"}, "api_customers.recompute": {"manager", "admin"},
    "api_customers.get_rules": {"manager", "admin"}, "api_customers.update_rules": {"manager", "admin"},
    "api_customers.churn": {"manager", "admin"}, "api_customers.contacted": {"manager", "admin"},
    "api_customers.audit_log": {"admin"},
    "api_customers.ticket_feedback": ALL, "api_customers.mailed_feedback": ALL,  # holders of the link
    "api_waits.all_waits": ALL, "api_waits.one_branch_waits": ALL,  # public figures, no personal data
    # Joining from home: anonymous, proven by a code sent to the contact, where the branch allows it;
    # the demo branch does not, so every caller gets 403 (tests/tickets/test_join_from_home.py).
    "api_remote_tickets.send_code": set(), "api_remote_tickets.join": set(),
    "api_remote_tickets.arrived": ALL,  # the holder of the link (a kiosk ticket: 409, nothing to report)
    # Outbound webhooks: managers of the branch (webhooks/api.py).
    "api_webhooks.list_webhooks": {"manager", "admin"}, "api_webhooks.create_webhook": {"manager", "admin"},
    "api_webhooks.get_webhook": {"manager", "admin"}, "api_webhooks.update_webhook": {"manager", "admin"},
    "api_webhooks.delete_webhook": {"manager", "admin"}, "api_webhooks.rotate_webhook_secret": {"manager", "admin"},
    "api_webhooks.test_webhook": {"manager", "admin"}, "api_webhooks.webhook_deliveries": {"manager", "admin"},
    "api_webhooks.retry_webhook_delivery": {"manager", "admin"},
    # SMS gateways' callbacks: no caller of this matrix, only a request signed by the gateway
    # (tests/notifications/test_sms.py). Opting a number out: any staff (a number is no branch's);
    # lifting it needs a manager (test_sms).
    "api_sms.twilio_status": set(), "api_sms.http_status": set(), "api_sms.twilio_inbound": set(),
    "api_sms.http_inbound": set(), "api_sms.set_opt_out": STAFF_UP | {"other_branch_staff"},
    # Forecast and staffing plan: managers of the branch (planning/api.py).
    "api_planning.get_forecast": {"manager", "admin"}, "api_planning.get_staffing": {"manager", "admin"},
    "api_planning.put_staffing": {"manager", "admin"}, "api_planning.recompute": {"manager", "admin"},
    "api_reports.stats": {"manager", "admin"},
}
# Pages: who may open them with a signed-in browser session (tested in test_pages, test_live_pages,
# test_manage_pages, test_booking_pages); listed here so that every route has a decision.
PAGES = {
    "public": {"static", "public.index", "public.favicon", "public.track", "booking_pages.manage", "booking_pages.calendar",
               "booking_pages.book_page", "booking_pages.book", "booking_pages.csrf_token", "display.lobby_screen",
               "health.healthz", "staff.login", "api-docs.openapi_redoc", "api-docs.openapi_json",
               "customer_pages.ticket_feedback", "customer_pages.mailed_feedback", "public.embed_waits",
               "join.join_page", "join.here"},  # tested in tests/tickets/test_join_from_home.py
    "kiosk device session": {"kiosk.home", "kiosk.check_in", "kiosk.ping", "kiosk.issue"},
    "signed-in staff": {"staff.logout", "staff.console", "staff.counter", "staff.csrf_token",
                        "customer_pages.record",  # today's customers only (customers.visible_branches)
                        "door.door"},  # staff of the branch only: tested in tests/tickets/test_door.py
    "customer pages, manager or admin": {"customer_pages.dashboard", "customer_pages.recompute",
                                         "customer_pages.update_rules", "customer_pages.contacted",
                                         "customer_pages.export", "customer_pages.erase"},
    "customer pages, admin": {"customer_pages.audit_log"},  # tested in test_customer_pages
    "manager or admin": {"manage.index", "manage.counters", "manage.update_counter",
                         "manage_kiosks.devices", "manage_kiosks.create_pairing_code", "manage_kiosks.retire",
                         # tested in test_webhooks
                         "manage_webhooks.endpoints", "manage_webhooks.create_endpoint", "manage_webhooks.endpoint",
                         "manage_webhooks.update_endpoint", "manage_webhooks.send_test", "manage_webhooks.rotate_secret",
                         "manage_webhooks.delete_endpoint", "manage_webhooks.retry_delivery",
                         # the manager dashboard, tested in test_dashboard
                         "dashboard.page", "dashboard.live", "dashboard.export_csv", "dashboard.recompute",
                         "dashboard.override", "dashboard.run_what_if", "dashboard.update_rules"},
    "admin": {"manage.create_counter", "manage.edit_branch", "manage.services", "manage.new_branch",
              "manage.edit_service", "manage.staff", "manage.edit_staff"},
}


def test_every_route_has_a_policy(app):
    classified = set(POLICY) | set(itertools.chain.from_iterable(PAGES.values()))
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - classified == set(), "new routes need an entry in POLICY or PAGES"
    assert classified - endpoints == set(), "POLICY or PAGES names a route that no longer exists"


@pytest.fixture
def world(app, api, session):
    """Ids and tokens to fill every path, and a header for each kind of caller."""
    api.call("POST", "/branches", "admin@demo.test", json={"slug": "north", "name": "North", "timezone": "Asia/Tokyo"})
    api.call("POST", "/staff", "admin@demo.test", json={"email": "north@demo.test", "password": "demo-password",
                                                        "role": "staff", "branches": ["north"]})
    ticket = api.issue("A", phone="+886912000777")  # today's customer 1 at demo
    slot = next(s for d in api.call("GET", "/branches/demo/availability?service=B&days=7").json["days"]
                for s in d["slots"] if s["remaining"] > 0)
    booked = api.call("POST", "/branches/demo/appointments",
                      json={"service": "B", "start": slot["start"], "name": "Ann", "phone": "+886912000777"}).json
    api.issue("C", phone="+886912000778")  # customer 2, merged into 1 by the merge calls
    session.expire_all()
    from queue_app.core.models import utcnow
    from queue_app.customers.models import ChurnAlert

    session.add(ChurnAlert(branch_id=session.query(Service).first().branch_id, customer_id=1, reason="valued_unseen",
                           last_visit_at=utcnow(), segment="core", created_at=utcnow()))
    session.commit()
    ids = {
        "slug": "demo", "token": None, "counter_id": session.query(Counter).filter_by(name="Counter 1").one().id,
        "ticket_id": ticket["id"], "service_id": session.query(Service).filter_by(code="A").first().id,
        "staff_id": session.query(Staff).filter_by(email="staff3@demo.test").one().id,
        "customer_id": 1, "alert_id": session.query(ChurnAlert).one().id, **_webhook_ids(session),
    }
    tokens = {"api_booking": booked["manage_token"], "api_tickets": ticket["token"], "api_customers": ticket["token"],
              "api_remote_tickets": ticket["token"]}
    headers = {"anonymous": {}, "kiosk": api.headers("kiosk"), "other_branch_staff": api.headers("north@demo.test"),
               "staff": api.headers("staff1@demo.test"), "manager": api.headers("manager@demo.test"),
               "admin": api.headers("admin@demo.test")}
    return ids, tokens, headers, slot


def _webhook_ids(session):
    from queue_app.webhooks import operations as webhooks

    endpoint = webhooks.create_endpoint(session, "demo", "https://example.com/hooks", ["ticket.issued"]).endpoint
    delivery = webhooks.send_test(session, endpoint.id)
    return {"endpoint_id": endpoint.id, "delivery_id": delivery.id}


def body_for(endpoint, n, slot):
    """A valid body, so the answer is about who is calling and not about the payload."""
    return {
        "api_auth.create_token": {"email": "staff3@demo.test", "password": "demo-password"},
        "api_booking.reschedule_appointment": {"start": slot["start"]},
        "api_booking.create_appointment": {"service": "B", "start": slot["start"], "name": "P",
                                           "phone": f"+88691200{n:04d}"},
        "api_booking.check_in": {"code": "ZZZZZZZZ"},
        "api_kiosks.pair": {"code": "ZZZZ-ZZZZ-ZZ"},
        "api_kiosks.heartbeat": {"printer": {"state": "ok"}},
        "api_tickets.issue_ticket": {"service": "C"},
        "api_remote_tickets.send_code": {"phone": f"+88691200{n:04d}"},
        "api_remote_tickets.join": {"service": "C", "phone": "+886912000777", "code": "123456", "travel_minutes": 20},
        "api_tickets.transfer": {"service": "C"},
        "api_catalogue.create_branch": {"slug": f"perm{n}", "name": "P", "timezone": "UTC"},
        "api_catalogue.update_branch": {"name": "Demo Branch"},
        "api_catalogue.create_service": {"code": chr(ord("D") + n % 20), "name": "P"},
        "api_catalogue.update_service": {"name": "Accounts and deposits"},
        "api_catalogue.create_counter": {"name": f"Perm {n}", "services": ["A"]},
        "api_catalogue.update_counter": {"state": "open"},
        "api_catalogue.create_staff": {"email": f"perm{n}@demo.test", "password": "long-enough-pw", "role": "staff"},
        "api_catalogue.update_staff": {"name": "Staff 3"},
        "api_customers.attach_customer": {"phone": "+886912000777"},
        "api_sms.set_opt_out": {"phone": "+886912000778", "opted_out": True},
        "api_customers.merge_customers": {"other": 2},
        "api_customers.update_rules": {"churn_days": 113},
        "api_customers.ticket_feedback": {"rating": 5}, "api_customers.mailed_feedback": {"rating": 5},
        "api_webhooks.create_webhook": {"url": "https://example.com/h", "event_types": ["ticket.called"]},
        "api_webhooks.update_webhook": {"description": "CRM"},
        "api_planning.put_staffing": {"start": "2026-03-02T09:00:00+08:00", "counters": 2},
    }.get(endpoint)


def test_each_api_route_admits_exactly_its_callers(app, api, world):
    ids, tokens, headers, slot = world
    n = 0
    problems = []
    # Erasure last: after it the customer is gone (404) for every later call.
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "api_customers.erase_customer", r.rule)):
        if rule.endpoint not in POLICY:
            continue
        values = {arg: ids[arg] for arg in rule.arguments if arg != "token"}
        if "token" in rule.arguments:
            values["token"] = tokens[rule.endpoint.split(".")[0]]
        path = rule.rule
        for arg, value in values.items():
            path = path.replace(f"<string:{arg}>", str(value)).replace(f"<int:{arg}>", str(value)).replace(f"<{arg}>", str(value))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for caller in CALLERS:
                n += 1
                body = body_for(rule.endpoint, n, slot)
                response = api.client.open(path, method=method, headers=headers[caller],
                                           json=body if method != "GET" else None)
                allowed = response.status_code not in (401, 403)
                if allowed != (caller in POLICY[rule.endpoint]):
                    problems.append(f"{method} {path} as {caller}: {response.status_code}")
                assert response.status_code < 500, f"{method} {path} as {caller}: {response.status_code}"
    assert problems == []


def test_anonymous_callers_are_refused_before_their_body_is_read(app, client, seeded):
    from queue_app.accounts.access import PUBLIC_ENDPOINTS

    # The app's list of public endpoints is this matrix's, not a second opinion.
    # (Plus remote tickets, which the handler refuses unless the branch allows them.)
    # (Plus the SMS gateways' callbacks, open to a request signed by the gateway.)
    assert PUBLIC_ENDPOINTS == {e for e, who in POLICY.items() if "anonymous" in who and e.startswith("api_")} | {
        "api_tickets.issue_ticket", "api_sms.twilio_status", "api_sms.http_status", "api_sms.twilio_inbound",
        "api_sms.http_inbound", "api_remote_tickets.send_code", "api_remote_tickets.join"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api_") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<string:{arg}>", "demo").replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(path, method=method, data="{broken", content_type="application/json")
            assert (answer.status_code, answer.json["error"]["code"]) == (401, "token_missing"), (method, path)
            checked += 1
    assert checked > 40


# The "customer of another branch" column: every route that returns or changes a customer, a
# customer's contact or a customer-bearing ticket, called by staff and a manager of a second
# branch about a customer only the first branch knows (customers.visible_branches, identity.py).
CUSTOMER_ROUTES = {
    "api_customers.get_customer", "api_customers.customer_history", "api_customers.export_customer",
    "api_customers.erase_customer", "api_customers.merge_customers", "api_customers.ticket_customer",
    "api_customers.attach_customer", "api_booking.unblock_customer", "api_booking.day_appointments",
    "api_customers.search_customers", "api_customers.segments", "api_customers.churn",
    "api_customers.contacted", "api_customers.feedback_summary",
}


def test_a_customer_of_another_branch_is_out_of_reach(app, api, world, session):
    ids, _tokens, headers, slot = world
    api.call("POST", "/staff", "admin@demo.test", json={"email": "north.manager@demo.test", "password": "demo-password",
                                                        "role": "manager", "branches": ["north"]})
    callers = {"other_branch_staff": headers["other_branch_staff"],
               "other_branch_manager": api.headers("north.manager@demo.test")}
    with_customer = {rule.endpoint for rule in app.url_map.iter_rules()
                     if "customer_id" in rule.arguments and rule.endpoint.startswith("api_")}
    assert with_customer <= CUSTOMER_ROUTES, "a new customer route needs a decision in CUSTOMER_ROUTES"
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in CUSTOMER_ROUTES:
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<string:{arg}>", str(ids[arg])).replace(f"<int:{arg}>", str(ids[arg]))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for caller, header in callers.items():
                body = body_for(rule.endpoint, 0, slot)
                if rule.endpoint == "api_customers.attach_customer":
                    body = {"customer_id": ids["customer_id"]}  # by id: the enumeration path
                query = "?q=+886912000777" if rule.endpoint == "api_customers.search_customers" else ""
                response = api.client.open(path + query, method=method, headers=header,
                                           json=body if method != "GET" else None)
                assert response.status_code in (403, 404), f"{method} {path} as {caller}: {response.status_code}"
                assert "912000777" not in response.get_data(as_text=True), f"{method} {path} as {caller}"
                checked += 1
    # A search at their own branch, by the demo customer's exact phone, finds nobody.
    for caller, header in callers.items():
        found = api.client.get("/api/v1/branches/north/customers?q=%2B886912000777", headers=header)
        assert (found.status_code, found.json) == (200, []), caller
    assert checked >= 2 * len(CUSTOMER_ROUTES)
    # The pages take the same policy: the record, its export and erasure, signed in as north's manager.
    from helpers import login_as, post_form

    page_client = app.test_client()
    login_as(page_client, "north.manager@demo.test")
    customer_id = ids["customer_id"]
    for url in (f"/customers/{customer_id}", f"/customers/{customer_id}/export.json"):
        answer = page_client.get(url)
        assert answer.status_code in (403, 404) and "912000777" not in answer.get_data(as_text=True), url
    erase_rule = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == "customer_pages.erase")
    answer = post_form(page_client, erase_rule.replace("<int:customer_id>", str(customer_id)), {})
    assert answer.status_code in (403, 404), answer.status_code
    session.rollback()
    assert session.get(Customer, customer_id) is not None
