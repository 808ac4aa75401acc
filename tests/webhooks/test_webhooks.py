"""Signed outbound webhooks, delivered to a real HTTP receiver on loopback that checks every signature."""
import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest
from helpers import SECRET
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session

from queue_app.booking import operations as booking
from queue_app.catalogue.models import Counter
from queue_app.catalogue.operations import get_branch
from queue_app.core.database import configure_engine, engine_options
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.tickets import queueing
from queue_app.webhooks import delivery as webhook_delivery
from queue_app.webhooks import operations as webhooks
from queue_app.webhooks.models import WebhookAttempt, WebhookDelivery


def open_counter(session, name="Counter 1"):
    return session.scalar(select(Counter).where(Counter.name == name)).id


def drain(session, **kwargs):
    total = webhook_delivery.DeliveryReport()
    while True:
        report = webhook_delivery.deliver_due(session, **kwargs)
        total.delivered += report.delivered
        total.retried += report.retried
        total.failed += report.failed
        if report.handled == 0:
            return total


def test_ticket_and_booking_events_arrive_signed_and_once(session, receiver):
    hooks = receiver(SECRET)
    endpoint = webhooks.create_endpoint(session, "demo", hooks.url, list(webhooks.EVENT_TYPES), secret=SECRET).endpoint
    now = utcnow()
    issued = queueing.issue_ticket(session, "demo", "A", now=now)
    called = queueing.call_next(session, open_counter(session), now=now)
    queueing.start(session, called.id, now=now)
    queueing.finish(session, called.id, now=now)
    made = booking.book(session, "demo", "B", _next_slot(session, now), name="Ann", phone="+886912000001", now=now)
    booking.cancel(session, made.manage_token, now=now)

    # Written with the changes themselves, before any delivery.
    queued = session.scalars(select(WebhookDelivery.event_type).order_by(WebhookDelivery.id)).all()
    assert queued == ["ticket.issued", "ticket.called", "ticket.started", "ticket.finished",
                      "booking.created", "booking.cancelled"]

    report = drain(session)
    assert report.delivered == 6 and hooks.bad_signatures == 0
    assert [b["type"] for b in hooks.accepted] == queued
    assert set(hooks.ids().values()) == {1}, "each event id arrives exactly once"
    first = hooks.accepted[0]
    assert first["branch"] == "demo" and first["data"]["ticket"]["label"] == issued.ticket.label
    assert hooks.accepted[1]["data"]["counter"]["name"] == "Counter 1"
    assert hooks.accepted[4]["data"]["booking"]["id"] == made.appointment.id
    assert "Ann" not in json.dumps(hooks.accepted) and "+886912000001" not in json.dumps(hooks.accepted)
    assert hooks.headers[0]["X-Queue-Event"] == "ticket.issued"

    assert drain(session).delivered == 0 and hooks.requests == 6  # nothing is sent twice
    log = webhooks.deliveries(session, endpoint.id)
    assert {d.status for d in log} == {"delivered"} and all(d.last_status_code == 200 for d in log)


def _next_slot(session, now):
    days = booking.availability(session, "demo", "B", now=now, days=14)["days"]
    return next(s.start for d in days for s in d["slots"] if s.remaining > 0)


def test_events_of_one_transaction_are_queued_in_the_order_they_happened(session, receiver):
    """A check-in makes a ticket (its event row is a plain INSERT, announced) and changes the
    booking (an ORM change seen at flush): both are queued, the ticket's event first, as written."""
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, list(webhooks.EVENT_TYPES), secret=SECRET)
    now = utcnow()
    start = _next_slot(session, now)
    made = booking.book(session, "demo", "B", start, name="Ann", phone="+886912000001", now=now)
    checked_in = booking.check_in(session, "demo", made.appointment.check_in_code, now=start)
    queued = session.execute(select(WebhookDelivery.event_type, WebhookDelivery.body)
                             .order_by(WebhookDelivery.id)).all()
    assert [event_type for event_type, _body in queued] == ["booking.created", "ticket.issued", "booking.checked_in"]
    ticket = json.loads(queued[1].body)["data"]["ticket"]
    assert ticket["label"] == checked_in.ticket.label and ticket["priority"] == "appointment"
    assert ticket["appointment"] == made.appointment.id


def test_only_subscribed_events_of_the_branch_are_queued(session, receiver):
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.called"], secret=SECRET)
    off = webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.issued"], secret=SECRET).endpoint
    webhooks.update_endpoint(session, off.id, active=False)
    queueing.issue_ticket(session, "demo", "A")
    queueing.call_next(session, open_counter(session))
    assert session.scalars(select(WebhookDelivery.event_type)).all() == ["ticket.called"]


def test_a_rolled_back_change_queues_no_webhook(session, receiver):
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.issued"], secret=SECRET)
    with pytest.raises(RuntimeError):
        with write_transaction(session):
            branch = get_branch(session, "demo")
            now = utcnow()
            queueing.add_ticket(session, branch, queueing.find_service(session, branch, "A"), priority="normal",
                                customer_id=None, kiosk_id=None, effective_at=now, now=now)
            session.flush()
            raise RuntimeError("the request failed after the ticket was written")
    assert session.scalar(select(func.count(WebhookDelivery.id))) == 0
    queueing.issue_ticket(session, "demo", "A")  # and the next committed change is queued as usual
    assert session.scalar(select(func.count(WebhookDelivery.id))) == 1


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged(session, receiver):
    hooks = receiver(SECRET, fail_first=2)
    endpoint = webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.issued"], secret=SECRET).endpoint
    queueing.issue_ticket(session, "demo", "A")
    now = utcnow()
    assert webhook_delivery.deliver_due(session, now=now).retried == 1
    assert webhook_delivery.deliver_due(session, now=now).handled == 0, "not again before the backoff"
    assert webhook_delivery.deliver_due(session, now=now + timedelta(seconds=31)).retried == 1
    assert webhook_delivery.deliver_due(session, now=now + timedelta(seconds=45)).handled == 0  # second wait is 60 s
    assert webhook_delivery.deliver_due(session, now=now + timedelta(seconds=100)).delivered == 1
    assert hooks.requests == 3 and len(hooks.accepted) == 1 and set(hooks.ids().values()) == {1}
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert delivery.status == "delivered" and delivery.attempts == 3
    log = webhooks.attempts_of(session, [delivery.id])[delivery.id]
    assert [a.status_code for a in log] == [500, 500, 200]
    assert log[0].error.startswith("HTTP 500") and log[2].error == ""
    # The same event id on every attempt: a receiver that got it but answered late can dedupe.
    assert len({h["X-Queue-Event-Id"] for h in hooks.headers}) == 1


def test_an_unreachable_receiver_ends_failed_and_a_manager_can_retry(session, receiver):
    endpoint = webhooks.create_endpoint(session, "demo", "http://127.0.0.1:9/nothing", ["ticket.issued"],
                                        secret=SECRET).endpoint
    queueing.issue_ticket(session, "demo", "A")
    now = utcnow()
    for attempt in range(webhooks.MAX_ATTEMPTS):
        webhook_delivery.deliver_due(session, now=now + timedelta(hours=attempt * 2))
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert delivery.status == "failed" and delivery.attempts == webhooks.MAX_ATTEMPTS
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error
    hooks = receiver(SECRET)
    webhooks.update_endpoint(session, endpoint.id, url=hooks.url)
    webhooks.retry_delivery(session, delivery.id)
    assert webhook_delivery.deliver_due(session).delivered == 1 and len(hooks.accepted) == 1


def test_two_delivery_workers_racing_deliver_each_event_exactly_once(session, receiver):
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.issued"], secret=SECRET)
    for _ in range(120):
        queueing.issue_ticket(session, "demo", "A")
    engines = []
    for _ in range(2):  # two scheduler processes: separate engines, no shared in-process lock
        engine = create_engine(str(session.get_bind().url), **engine_options(str(session.get_bind().url)))
        configure_engine(engine)
        engines.append(engine)
    start = threading.Barrier(4)
    errors = []

    def worker(engine):
        try:
            with Session(engine) as own:
                start.wait()
                while webhook_delivery.deliver_due(own, batch=10).handled:
                    pass
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(engines[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = hooks.ids()
    assert len(ids) == 120 and set(ids.values()) == {1}
    assert hooks.requests == 120 and hooks.bad_signatures == 0
    assert session.scalar(select(func.count(WebhookAttempt.id))) == 120
    for engine in engines:
        engine.dispose()


def test_enqueue_is_idempotent_on_the_event_id(session, receiver):
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, ["booking.created"], secret=SECRET)
    branch_id = get_branch(session, "demo").id
    session.commit()
    for _ in range(3):
        with write_transaction(session):
            webhooks.enqueue(session, branch_id, "booking.created", {"booking": {"id": 1}}, at=utcnow(),
                             event_id="evt_fixed")
    assert drain(session).delivered == 1 and list(hooks.ids().items()) == [("evt_fixed", 1)]


def test_a_worker_that_died_mid_delivery_leaves_the_row_to_be_taken_again(session, receiver):
    hooks = receiver(SECRET)
    webhooks.create_endpoint(session, "demo", hooks.url, ["ticket.issued"], secret=SECRET)
    queueing.issue_ticket(session, "demo", "A")
    now = utcnow()
    with write_transaction(session):  # as a worker that claimed the row and was killed
        session.execute(update(WebhookDelivery).values(status="sending", next_attempt_at=now + webhooks.LEASE))
    assert webhook_delivery.deliver_due(session, now=now).handled == 0
    assert webhook_delivery.deliver_due(session, now=now + webhooks.LEASE + timedelta(seconds=1)).delivered == 1
    assert len(hooks.accepted) == 1


def test_private_destinations_are_refused_when_not_allowed(session):
    endpoint = webhooks.create_endpoint(session, "demo", "http://127.0.0.1:9/x", ["ticket.issued"]).endpoint
    queueing.issue_ticket(session, "demo", "A")
    assert webhook_delivery.deliver_due(session, allow_private=False).failed == 1
    [delivery] = webhooks.deliveries(session, endpoint.id)
    assert delivery.status == "failed" and "non-public" in delivery.last_error


def test_signature_recipe_matches_the_documented_one():
    body = '{"id":"evt_1"}'
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body.encode(), hashlib.sha256).hexdigest()
    assert webhook_delivery.sign("s3cret-s3cret-s3cret", 1700000000, body) == expected
    header = "sha256=" + expected
    assert webhook_delivery.verify("s3cret-s3cret-s3cret", "1700000000", body.encode(), header, now=1700000100)
    assert not webhook_delivery.verify("s3cret-s3cret-s3cret", "1700000000", body.encode(), header, now=1700001000)
    assert not webhook_delivery.verify("other-secret-other", "1700000000", body.encode(), header, now=1700000100)


# --- the API ------------------------------------------------------------------------------------

def test_managers_configure_webhooks_through_the_api(api, receiver):
    hooks = receiver("unused")
    created = api.call("POST", "/branches/demo/webhooks", "manager@demo.test",
                       json={"url": hooks.url, "event_types": ["ticket.called", "booking.created"],
                             "description": "CRM"})
    assert created.status_code == 201, created.json
    secret = created.json["secret"]
    assert secret.startswith("whsec_") and created.json["secret_hint"] == "…" + secret[-4:]
    hooks.secret = secret
    listed = api.call("GET", "/branches/demo/webhooks", "manager@demo.test").json
    assert [w["id"] for w in listed] == [created.json["id"]] and "secret" not in listed[0]
    hook_id = created.json["id"]

    bad = api.call("POST", "/branches/demo/webhooks", "manager@demo.test",
                   json={"url": "ftp://example.com", "event_types": ["ticket.called"]})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_field"
    unknown = api.call("POST", "/branches/demo/webhooks", "manager@demo.test",
                       json={"url": hooks.url, "event_types": ["ticket.exploded"]})
    assert unknown.status_code == 422

    patched = api.call("PATCH", f"/webhooks/{hook_id}", "manager@demo.test", json={"event_types": ["ticket.issued"]})
    assert patched.status_code == 200 and patched.json["event_types"] == ["ticket.issued"]
    ping = api.call("POST", f"/webhooks/{hook_id}/test", "manager@demo.test")
    assert ping.status_code == 202 and ping.json["event_type"] == "ping" and ping.json["status"] == "pending"
    api.issue("A")
    from queue_app.core.extensions import db

    with api.client.application.app_context():
        assert webhook_delivery.deliver_due(db.session()).delivered == 2
    assert [b["type"] for b in hooks.accepted] == ["ping", "ticket.issued"]

    log = api.call("GET", f"/webhooks/{hook_id}/deliveries", "manager@demo.test").json
    assert [d["event_type"] for d in log] == ["ticket.issued", "ping"]
    assert log[0]["status"] == "delivered" and log[0]["attempt_log"][0]["status_code"] == 200

    rotated = api.call("POST", f"/webhooks/{hook_id}/rotate-secret", "manager@demo.test").json
    assert rotated["secret"] != secret and rotated["previous_secret_until"] is not None  # 24 h by default
    at_once = api.call("POST", f"/webhooks/{hook_id}/rotate-secret?overlap_hours=0", "manager@demo.test").json
    assert at_once["previous_secret_until"] is None
    too_long = api.call("POST", f"/webhooks/{hook_id}/rotate-secret?overlap_hours=500", "manager@demo.test")
    assert too_long.status_code == 422
    assert api.call("DELETE", f"/webhooks/{hook_id}", "manager@demo.test").status_code == 204
    assert api.call("GET", f"/webhooks/{hook_id}", "manager@demo.test").status_code == 404


def test_a_manager_of_another_branch_cannot_see_the_webhooks(api, session):
    from queue_app.catalogue import operations as catalogue

    catalogue.create_branch(session, "north", "North", "Europe/Berlin")
    catalogue.create_staff(session, "north.manager@demo.test", "demo-password", "manager", ["north"])
    made = webhooks.create_endpoint(session, "demo", "https://example.com/h", ["ticket.issued"]).endpoint
    assert api.call("GET", "/branches/demo/webhooks", "north.manager@demo.test").status_code == 403
    assert api.call("GET", f"/webhooks/{made.id}/deliveries", "north.manager@demo.test").status_code == 403
    assert api.call("GET", "/branches/demo/webhooks", "staff1@demo.test").status_code == 403


# --- the manage page --------------------------------------------------------------------------------

def test_the_manage_page_adds_an_endpoint_shows_its_secret_once_and_the_delivery_log(client, api, session, receiver):
    from helpers import csrf_token, login_as

    hooks = receiver("unused")
    login_as(client, "manager@demo.test")
    page = client.get("/manage/branches/demo/webhooks")
    assert page.status_code == 200
    response = client.post("/manage/branches/demo/webhooks", data={
        "url": hooks.url, "description": "Our CRM", "event_types": ["ticket.issued", "ticket.called"], "active": "y",
        "csrf_token": csrf_token(page.data)})
    assert response.status_code == 302
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    secret = shown.split('id="webhook-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    assert secret not in client.get("/manage/branches/demo/webhooks").get_data(as_text=True)  # once only
    hooks.secret = secret
    api.issue("A")
    assert webhook_delivery.deliver_due(session).delivered == 1 and len(hooks.accepted) == 1
    [endpoint] = webhooks.branch_endpoints(session, 1)
    detail = client.get(f"/manage/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "ticket.issued" in detail and "200" in detail and hooks.accepted[0]["id"] in detail
    refused = client.post("/manage/branches/demo/webhooks", data={"url": hooks.url, "event_types": ["ticket.issued"]})
    assert refused.status_code == 400  # no CSRF token


def test_after_a_rotation_the_old_secret_signs_too_until_the_overlap_ends(session, receiver):
    still_old = receiver(SECRET)  # a receiver not yet given the new secret
    endpoint = webhooks.create_endpoint(session, "demo", still_old.url, ["ticket.issued"], secret=SECRET).endpoint
    new = webhooks.rotate_secret(session, endpoint.id, overlap=timedelta(hours=1))
    queueing.issue_ticket(session, "demo", "A")
    assert drain(session).delivered == 1 and still_old.bad_signatures == 0
    headers = still_old.headers[-1]
    assert len(headers["X-Queue-Signature"].split(",")) == 2
    for secret in (new, SECRET):  # the documented check accepts either during the overlap
        assert webhook_delivery.verify(secret, headers["X-Queue-Timestamp"], still_old.raw[-1], headers["X-Queue-Signature"])
    assert not webhook_delivery.verify("whsec_someone-else-0123456789", headers["X-Queue-Timestamp"], still_old.raw[-1],
                               headers["X-Queue-Signature"])
    # An overlap that has ended (a rotation two hours ago with one hour of overlap): the new secret only.
    switched = receiver(new)
    webhooks.update_endpoint(session, endpoint.id, url=switched.url)
    newer = webhooks.rotate_secret(session, endpoint.id, overlap=timedelta(hours=1), now=utcnow() - timedelta(hours=2))
    switched.secret = newer
    queueing.issue_ticket(session, "demo", "A")
    assert drain(session).delivered == 1 and switched.bad_signatures == 0
    assert len(switched.headers[-1]["X-Queue-Signature"].split(",")) == 1
    webhooks.rotate_secret(session, endpoint.id, overlap=timedelta(0))
    session.expire_all()
    assert webhooks.get_endpoint(session, endpoint.id).previous_secret is None
