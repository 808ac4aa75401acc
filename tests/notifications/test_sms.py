"""Real SMS: the Twilio and generic HTTP drivers against a fake gateway on loopback (a real HTTP
server that records and checks each request), retries and permanent failures through the outbox,
segment counting, signed delivery reports and STOP/START, on real SQLite.

Every `now` is frozen and passed in. The Twilio client is pointed at the fake gateway through
its own extension point (a subclass of its HTTP client, `QUEUE_APP_TWILIO_API_URL`), not patched.
"""
import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from queue_app.booking import operations as booking
from queue_app.notifications import mail, notify, sms
from queue_app.notifications.models import Notification, SmsOptOut
from queue_app.notifications.sms_gateways import HttpGatewayDriver

TAIPEI = ZoneInfo("Asia/Taipei")
BASE = "http://kiosk.test"  # QUEUE_APP_BASE_URL in the test config
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=TAIPEI)  # a Monday
START = datetime(2026, 6, 3, 10, 0, tzinfo=TAIPEI)
MINUTE = timedelta(minutes=1)
PHONE = "+886912345678"
SID, TOKEN, SENDER = "AC0123456789abcdef0123456789abcdef", "twilio-auth-token", "+15005550006"
STATUS_URL = f"{BASE}/api/v1/sms/status/twilio"
SECRET = "gateway-shared-secret"


@pytest.fixture(autouse=True)
def loggers_enabled(monkeypatch):
    """Alembic's env.py disables the loggers that exist when it runs (see test_notify.py)."""
    for name in ("queue_app.notifications.notify", "queue_app.notifications.sms_gateways"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)


class FakeGateway:
    """An HTTP server on loopback that records every request and answers from a script:
    (status, JSON body) per request, the last one repeated. `hold` keeps requests unanswered
    until the test ends (a gateway that hangs)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, object]] = [(201, {"sid": "SM0001", "status": "queued"})]
        self.hold = False
        self.release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                gateway.requests.append({"method": self.command, "path": self.path,
                                         "headers": dict(self.headers.items()),
                                         "body": self.rfile.read(length).decode("utf-8")})
                if gateway.hold:
                    gateway.release.wait(10)
                status, body = gateway.answers.pop(0) if len(gateway.answers) > 1 else gateway.answers[0]
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def form(self, index=-1) -> dict:
        return {key: values[0] for key, values in parse_qs(self.requests[index]["body"]).items()}

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    made = FakeGateway()
    yield made
    made.close()


def twilio_driver(gateway, **extra):
    return mail.driver_for({
        "QUEUE_APP_MAIL_DRIVER": "console", "QUEUE_APP_SMS_DRIVER": "twilio", "QUEUE_APP_BASE_URL": BASE,
        "QUEUE_APP_TWILIO_ACCOUNT_SID": SID, "QUEUE_APP_TWILIO_AUTH_TOKEN": TOKEN, "QUEUE_APP_TWILIO_FROM": SENDER,
        "QUEUE_APP_TWILIO_API_URL": gateway.url, **extra,
    })


def http_driver(gateway, **extra):
    return mail.driver_for({
        "QUEUE_APP_MAIL_DRIVER": "console", "QUEUE_APP_SMS_DRIVER": "http", "QUEUE_APP_BASE_URL": BASE,
        "QUEUE_APP_SMS_HTTP_URL": gateway.url + "/send", **extra,
    })


def add_sms(session, text, *, to=PHONE, key=None, now=NOW) -> int:
    """An SMS outbox row as the timed jobs write them (text in the payload, no booking)."""
    row = Notification(channel="sms", recipient=to, template=notify.ALMOST_TURN, language="en",
                       payload={"body": text}, dedupe_key=key or f"test:{text[:40]}:{to}", status="pending",
                       attempts=0, next_attempt_at=now, last_error="", created_at=now)
    session.add(row)
    session.commit()
    return row.id


def row(session, row_id) -> Notification:
    session.rollback()  # a fresh read: the app wrote through its own connection
    return session.get(Notification, row_id)


# --- Twilio ---------------------------------------------------------------------------------------

def test_twilio_sends_the_booking_sms_with_auth_sender_and_status_callback(session, gateway, caplog):
    made = booking.book(session, "demo", "A", START, name="Ann Lee", email=None, phone=PHONE, language="en",
                        now=NOW, base_url=BASE)
    gateway.answers = [(201, {"sid": "SMabc123", "status": "queued"})]
    with caplog.at_level(logging.INFO, logger="queue_app.notifications.notify"):
        report = notify.send_due(session, twilio_driver(gateway), NOW + MINUTE)
    assert (report.sent, report.handled) == (1, 1)
    [request] = gateway.requests
    assert request["method"] == "POST" and request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    form = gateway.form()
    assert form["To"] == PHONE and form["From"] == SENDER and form["StatusCallback"] == STATUS_URL
    assert made.appointment.check_in_code in form["Body"] and "MessagingServiceSid" not in form
    session.rollback()
    [sent] = session.scalars(select(Notification).where(Notification.template == notify.CONFIRMED)).all()
    assert (sent.status, sent.provider, sent.provider_message_id, sent.delivery_status) == (
        "sent", "twilio", "SMabc123", "queued")
    assert sent.segments == sms.segments(form["Body"]).parts >= 1
    assert f"SMS {sent.id} to {PHONE}: {sent.segments} part(s), GSM-7" in caplog.text


def test_twilio_sends_from_a_messaging_service_when_one_is_set(session, gateway):
    add_sms(session, "Your turn is near.")
    notify.send_due(session, twilio_driver(gateway, QUEUE_APP_TWILIO_MESSAGING_SERVICE_SID="MG0123"), NOW)
    form = gateway.form()
    assert form["MessagingServiceSid"] == "MG0123" and "From" not in form and form["Body"] == "Your turn is near."


def test_twilio_server_error_is_retried_with_the_outbox_backoff(session, gateway):
    row_id = add_sms(session, "Your turn is near.")
    gateway.answers = [(503, {"code": 20500, "message": "Service unavailable", "status": 503}),
                       (201, {"sid": "SM2", "status": "queued"})]
    report = notify.send_due(session, twilio_driver(gateway), NOW)
    failed = row(session, row_id)
    assert report.retried == 1 and failed.status == "pending" and failed.attempts == 1
    assert failed.next_attempt_at == NOW + notify.backoff(1) and "GatewayError" in failed.last_error
    assert notify.send_due(session, twilio_driver(gateway), NOW + MINUTE).sent == 1
    assert row(session, row_id).provider_message_id == "SM2" and len(gateway.requests) == 2


@pytest.mark.parametrize("code", [21211, 21614])  # invalid number, not a mobile
def test_twilio_refusing_the_number_fails_the_row_at_once(session, gateway, code):
    row_id = add_sms(session, "Your turn is near.")
    gateway.answers = [(400, {"code": code, "message": "The 'To' number is not valid", "status": 400})]
    report = notify.send_due(session, twilio_driver(gateway), NOW)
    failed = row(session, row_id)
    assert report.failed == 1 and (failed.status, failed.attempts) == ("failed", 1)
    assert f"error {code}" in failed.last_error and "PermanentFailure" in failed.last_error
    assert notify.send_due(session, twilio_driver(gateway), NOW + timedelta(hours=2)).handled == 0
    assert not sms.is_opted_out(session, PHONE)  # a bad number is not one that said STOP


def test_twilio_21610_puts_the_number_on_the_opt_out_list_and_its_other_sms_are_skipped(session, gateway,
                                                                                      twilio_app, client):
    """The number replied STOP at the carrier (Twilio error 21610): that row fails, the number goes
    on our list, its next message is not even attempted, and another number's still goes out."""
    refused = add_sms(session, "Your turn is near.", key="first")
    later = add_sms(session, "Time to set off.", key="second")
    other = add_sms(session, "Your turn is near.", to="+886912000111", key="other")
    gateway.answers = [(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}),
                       (201, {"sid": "SMother", "status": "queued"})]
    report = notify.send_due(session, twilio_driver(gateway), NOW)
    assert (report.failed, report.skipped, report.sent) == (1, 1, 1)
    assert [parse_qs(r["body"])["To"][0] for r in gateway.requests] == [PHONE, "+886912000111"]
    failed = row(session, refused)
    assert (failed.status, failed.attempts) == ("failed", 1) and "error 21610" in failed.last_error
    assert row(session, later).status == "skipped" and row(session, other).status == "sent"
    opt_out = session.get(SmsOptOut, PHONE)
    assert (opt_out.opted_out, opt_out.source, opt_out.updated_at) == (True, "carrier", NOW)
    assert "21610" in opt_out.detail
    assert notify.send_due(session, twilio_driver(gateway), NOW + timedelta(hours=2)).handled == 0  # not retried
    # START (to us, after START to the carrier) takes it off as for any opt-out.
    assert twilio_reply(client, "START").status_code == 200
    session.rollback()
    assert not sms.is_opted_out(session, PHONE)


def test_refused_connection_and_a_hung_gateway_are_retried(session, gateway):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    first = add_sms(session, "one", key="one")
    report = notify.send_due(session, twilio_driver(gateway, QUEUE_APP_TWILIO_API_URL=closed), NOW)
    assert report.retried == 1 and row(session, first).status == "pending"
    assert "not reachable" in row(session, first).last_error
    second = add_sms(session, "two", key="two", now=NOW + 5 * MINUTE)
    gateway.hold = True
    report = notify.send_due(session, http_driver(gateway, QUEUE_APP_SMS_TIMEOUT=0.2), NOW + 5 * MINUTE)
    assert report.retried == 2 and row(session, second).status == "pending"
    assert "not reachable" in row(session, second).last_error and row(session, second).attempts == 1


# --- the generic HTTP gateway ---------------------------------------------------------------------

def test_http_gateway_json_template_gets_escaped_values_and_the_headers(session, gateway):
    gateway.answers = [(200, {"data": {"id": "gw-77"}})]
    driver = http_driver(
        gateway, QUEUE_APP_SMS_HTTP_HEADERS='{"Authorization": "Bearer carrier-key", "X-Account": "bank"}',
        QUEUE_APP_SMS_HTTP_BODY='{"dest": "{to}", "msg": "{text}", "sender": "BANK", "cb": "{status_url}"}',
        QUEUE_APP_SMS_HTTP_ID_FIELD="data.id",
    )
    text = 'He said "stop" \\ then {to}\n排隊 A012 快到了'
    row_id = add_sms(session, text)
    assert notify.send_due(session, driver, NOW).sent == 1
    [request] = gateway.requests
    assert request["path"] == "/send" and request["method"] == "POST"
    assert request["headers"]["Authorization"] == "Bearer carrier-key" and request["headers"]["X-Account"] == "bank"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"]) == {"dest": PHONE, "msg": text, "sender": "BANK",
                                           "cb": f"{BASE}/api/v1/sms/status/http"}
    sent = row(session, row_id)
    assert (sent.provider, sent.provider_message_id, sent.segments) == ("http", "gw-77", 1)


def test_http_gateway_form_template_url_encodes_values(session, gateway):
    gateway.answers = [(200, {"message_id": 9})]
    driver = http_driver(gateway, QUEUE_APP_SMS_HTTP_FORMAT="form",
                         QUEUE_APP_SMS_HTTP_BODY="user=bank&to={to}&message={text}")
    text = "A&B=1 + 50% 退订"
    row_id = add_sms(session, text)
    notify.send_due(session, driver, NOW)
    [request] = gateway.requests
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request["body"]) == {"user": ["bank"], "to": [PHONE], "message": [text]}
    assert row(session, row_id).provider_message_id == "9"


def test_http_gateway_errors_retry_and_listed_statuses_fail(session, gateway):
    driver = http_driver(gateway, QUEUE_APP_SMS_HTTP_PERMANENT_STATUSES="400, 422")
    retried, refused = add_sms(session, "a", key="a"), add_sms(session, "b", key="b")
    gateway.answers = [(500, {"error": "down"}), (422, {"error": "invalid number"})]
    report = notify.send_due(session, driver, NOW)
    assert (report.retried, report.failed) == (1, 1)
    assert row(session, retried).status == "pending" and "answered 500" in row(session, retried).last_error
    assert row(session, refused).status == "failed" and "invalid number" in row(session, refused).last_error


def test_http_gateway_refuses_a_template_that_is_not_json_at_start(gateway):
    with pytest.raises(ValueError, match="QUEUE_APP_SMS_HTTP_BODY"):
        HttpGatewayDriver(gateway.url, body_template='{"to": {to}, "text": "{text}"}')


# --- length and Unicode ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    ("", "GSM-7", 0, 1),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("Café @ £5 ÄÖÜ ñ", "GSM-7", 15, 1),
    ("€" * 80, "GSM-7", 160, 1),  # extension characters count two
    ("€" * 81, "GSM-7", 162, 2),
    ("a" * 152 + "€" + "a" * 9, "GSM-7", 163, 2),  # the € would straddle parts: it starts the second
    ("a" * 152 + "€" + "a" * 153, "GSM-7", 307, 3),
    ("你" * 70, "UCS-2", 70, 1),  # Chinese: UCS-2
    ("你" * 71, "UCS-2", 71, 2),
    ("你" * 134, "UCS-2", 134, 2),
    ("你" * 135, "UCS-2", 135, 3),
    ("a" * 69 + "號", "UCS-2", 70, 1),  # one character outside GSM-7 makes the whole text UCS-2
    ("a" * 70 + "號", "UCS-2", 71, 2),
    ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two units each
])
def test_segments(text, encoding, units, parts):
    assert sms.segments(text) == sms.Segments(encoding, units, parts)


def test_a_text_over_the_segment_limit_fails_with_the_reason_and_is_not_sent(session, gateway):
    too_long, fits = add_sms(session, "你" * (67 * 6 + 1), key="long"), add_sms(session, "你" * (67 * 6), key="fits")
    report = notify.send_due(session, twilio_driver(gateway), NOW)
    assert (report.failed, report.sent) == (1, 1) and len(gateway.requests) == 1
    refused = row(session, too_long)
    assert refused.status == "failed" and refused.segments == 7
    assert "text too long: 7 SMS parts (UCS-2, 403 units), the limit is 6" in refused.last_error
    assert row(session, fits).segments == 6
    limited = add_sms(session, "a" * 161, key="limited")
    notify.send_due(session, twilio_driver(gateway, QUEUE_APP_SMS_MAX_SEGMENTS=1), NOW)
    assert row(session, limited).status == "failed"


# --- delivery status callbacks --------------------------------------------------------------------

def signed(url, params, token=TOKEN):
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


@pytest.fixture
def twilio_app(app):
    app.config.update(QUEUE_APP_TWILIO_AUTH_TOKEN=TOKEN, QUEUE_APP_SMS_HTTP_CALLBACK_SECRET=SECRET)
    return app


def sent_row(session, gateway, sid="SMabc123") -> int:
    row_id = add_sms(session, "Your turn is near.", key=f"sent:{sid}")
    gateway.answers = [(201, {"sid": sid, "status": "queued"})]
    notify.send_due(session, twilio_driver(gateway), NOW)
    assert row(session, row_id).provider_message_id == sid
    return row_id


def test_a_signed_twilio_status_report_updates_the_row(session, gateway, twilio_app, client):
    row_id = sent_row(session, gateway)
    params = {"MessageSid": "SMabc123", "MessageStatus": "delivered", "AccountSid": SID, "To": PHONE}
    response = client.post("/api/v1/sms/status/twilio", data=params, headers=signed(STATUS_URL, params))
    assert response.status_code == 200 and response.json["delivery_status"] == "delivered"
    assert row(session, row_id).delivery_status == "delivered"
    late = {"MessageSid": "SMabc123", "MessageStatus": "sent"}  # reports are not ordered: no step back
    assert client.post("/api/v1/sms/status/twilio", data=late, headers=signed(STATUS_URL, late)).status_code == 200
    assert row(session, row_id).delivery_status == "delivered"


def undelivered_report(client, error_code: str) -> None:
    """Twilio's signed status report: the message was undelivered with `error_code`."""
    params = {"MessageSid": "SMabc123", "MessageStatus": "undelivered", "ErrorCode": error_code}
    assert client.post("/api/v1/sms/status/twilio", data=params,
                       headers=signed(STATUS_URL, params)).status_code == 200


def test_a_failed_report_keeps_twilios_error_code(session, gateway, twilio_app, client):
    row_id = sent_row(session, gateway)
    undelivered_report(client, "30003")
    failed = row(session, row_id)
    assert failed.delivery_status == "undelivered" and "30003" in failed.last_error and failed.status == "sent"


def test_an_undelivered_report_with_twilio_21610_puts_the_number_on_the_opt_out_list(session, gateway, twilio_app,
                                                                                      client):
    """Twilio may take the message and report 21610 later (the number said STOP at the carrier)."""
    row_id = sent_row(session, gateway)
    recipient = row(session, row_id).recipient
    undelivered_report(client, "21610")
    session.commit()  # end the read that began before the report's write
    opt_out = session.get(SmsOptOut, recipient)
    assert opt_out is not None and opt_out.opted_out and opt_out.source == "carrier" and "21610" in opt_out.detail
    assert row(session, row_id).delivery_status == "undelivered"


def test_another_error_code_in_a_report_opts_nobody_out(session, gateway, twilio_app, client):
    row_id = sent_row(session, gateway)
    undelivered_report(client, "30003")
    recipient = row(session, row_id).recipient
    session.commit()
    assert session.get(SmsOptOut, recipient) is None


def test_unsigned_wrongly_signed_unknown_and_bad_reports(session, gateway, twilio_app, client):
    row_id = sent_row(session, gateway)
    params = {"MessageSid": "SMabc123", "MessageStatus": "failed"}
    unsigned = client.post("/api/v1/sms/status/twilio", data=params)
    wrong = client.post("/api/v1/sms/status/twilio", data=params, headers=signed(STATUS_URL, params, "other"))
    tampered = client.post("/api/v1/sms/status/twilio", data={**params, "MessageStatus": "delivered"},
                           headers=signed(STATUS_URL, params))
    for response in (unsigned, wrong, tampered):
        assert response.status_code == 403 and response.json["error"]["code"] == "bad_signature"
    assert row(session, row_id).delivery_status == "queued"
    unknown = {"MessageSid": "SMnothing", "MessageStatus": "delivered"}
    response = client.post("/api/v1/sms/status/twilio", data=unknown, headers=signed(STATUS_URL, unknown))
    assert response.status_code == 404 and response.json["error"]["code"] == "message_not_found"
    for bad in ({"MessageSid": "SMabc123", "MessageStatus": "exploded"}, {"MessageStatus": "delivered"}):
        response = client.post("/api/v1/sms/status/twilio", data=bad, headers=signed(STATUS_URL, bad))
        assert response.status_code == 422 and response.is_json
    assert client.post("/api/v1/sms/status/carrier-pigeon", data=params).status_code == 404  # no such gateway
    assert row(session, row_id).delivery_status == "queued"


def hmac_headers(body: bytes, secret=SECRET) -> dict:
    return {"X-SMS-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def test_the_generic_gateways_report_is_checked_with_the_shared_secret(session, gateway, twilio_app, client):
    gateway.answers = [(200, {"message_id": "gw-1"})]
    row_id = add_sms(session, "hello")
    notify.send_due(session, http_driver(gateway), NOW)
    body = json.dumps({"message_id": "gw-1", "status": "delivered"}).encode()
    assert client.post("/api/v1/sms/status/http", data=body, headers=hmac_headers(body, "wrong")).status_code == 403
    assert client.post("/api/v1/sms/status/http", data=body,
                       headers={"Content-Type": "application/json"}).status_code == 403
    assert row(session, row_id).delivery_status == "queued"
    assert client.post("/api/v1/sms/status/http", data=body, headers=hmac_headers(body)).status_code == 200
    assert row(session, row_id).delivery_status == "delivered"
    not_object = b"[1, 2]"
    assert client.post("/api/v1/sms/status/http", data=not_object, headers=hmac_headers(not_object)).status_code == 422
    twilio_app.config["QUEUE_APP_SMS_HTTP_CALLBACK_AUTH"] = "token"  # carriers that can only add a URL parameter
    form = {"message_id": "gw-1", "status": "failed"}
    assert client.post("/api/v1/sms/status/http?token=nope", data=form).status_code == 403
    assert client.post(f"/api/v1/sms/status/http?token={SECRET}", data=form).status_code == 200


# --- opt-out --------------------------------------------------------------------------------------

INBOUND_URL = f"{BASE}/api/v1/sms/inbound/twilio"


def twilio_reply(client, text, sender=PHONE, headers=None):
    params = {"From": sender, "To": SENDER, "Body": text, "MessageSid": "SMin1"}
    return client.post("/api/v1/sms/inbound/twilio", data=params, headers=headers or signed(INBOUND_URL, params))


def test_stop_then_no_sms_is_sent_and_start_lets_them_through(session, gateway, twilio_app, client):
    forged = twilio_reply(client, "STOP", headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403 and not sms.is_opted_out(session, PHONE)
    response = twilio_reply(client, " stop ")
    assert response.status_code == 200 and response.mimetype == "text/xml"
    session.rollback()  # a fresh read: the app wrote through its own connection
    assert sms.is_opted_out(session, PHONE) and sms.is_opted_out(session, "+886 912-345-678")
    skipped = add_sms(session, "Your turn is near.", key="after-stop")
    report = notify.send_due(session, twilio_driver(gateway), NOW)
    assert (report.skipped, report.sent, len(gateway.requests)) == (1, 0, 0)
    assert row(session, skipped).status == "skipped" and "opted out" in row(session, skipped).last_error
    assert notify.send_due(session, twilio_driver(gateway), NOW + timedelta(hours=2)).handled == 0  # not retried
    assert twilio_reply(client, "START").status_code == 200
    assert twilio_reply(client, "Thanks, see you").status_code == 200  # not a keyword: nothing changes
    again = add_sms(session, "Your turn is near.", key="after-start")
    assert notify.send_due(session, twilio_driver(gateway), NOW).sent == 1
    assert row(session, again).status == "sent" and gateway.form()["To"] == PHONE


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit", "退訂", "退订"])
def test_every_opt_out_word_stops_sms_through_the_generic_gateway(session, twilio_app, client, word):
    body = json.dumps({"from": PHONE, "text": word}, ensure_ascii=False).encode()
    assert client.post("/api/v1/sms/inbound/http", data=body, headers=hmac_headers(body, "wrong")).status_code == 403
    response = client.post("/api/v1/sms/inbound/http", data=body, headers=hmac_headers(body))
    assert response.status_code == 200 and response.json == {"from": PHONE, "action": "stop"}
    session.rollback()  # a fresh read: the app wrote through its own connection
    assert sms.is_opted_out(session, PHONE)
    start = json.dumps({"from": PHONE, "text": "UNSTOP"}).encode()
    assert client.post("/api/v1/sms/inbound/http", data=start, headers=hmac_headers(start)).json["action"] == "start"
    session.rollback()  # a fresh read: the app wrote through its own connection
    assert not sms.is_opted_out(session, PHONE)


def test_staff_opt_a_number_out_and_only_a_manager_lifts_it(session, gateway, api):
    response = api.call("POST", "/sms/opt-outs", "staff1@demo.test", json={"phone": "+886 912 345 678",
                                                                          "opted_out": True})
    assert response.status_code == 200 and response.json["phone"] == PHONE and response.json["source"] == "staff"
    skipped = add_sms(session, "Your turn is near.", key="staff-stop")
    assert notify.send_due(session, twilio_driver(gateway), NOW).skipped == 1
    assert row(session, skipped).status == "skipped"
    lift = {"phone": PHONE, "opted_out": False}
    assert api.call("POST", "/sms/opt-outs", "staff1@demo.test", json=lift).status_code == 403
    assert api.call("POST", "/sms/opt-outs", None, json=lift).status_code == 401
    assert api.call("POST", "/sms/opt-outs", "manager@demo.test", json=lift).json["opted_out"] is False
    bad = api.call("POST", "/sms/opt-outs", "manager@demo.test", json={"phone": "not a number", "opted_out": True})
    assert bad.status_code == 422
    session.rollback()  # a fresh read: the app wrote through its own connection
    assert session.get(SmsOptOut, PHONE).opted_out is False
