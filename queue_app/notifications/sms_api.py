"""SMS gateways calling us: delivery status reports and inbound texts (STOP/START), and the staff
opt-out switch. Twilio signs its requests (X-Twilio-Signature, checked with the auth token);
the generic HTTP gateway proves itself with a shared secret (an HMAC of the body, or the secret
itself). Anything unproven is a 403 and changes nothing (docs/pages/reference/api.md).
"""
import hashlib
import hmac

from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from twilio.request_validator import RequestValidator

from queue_app.accounts.access import require_staff
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.customers.identity import normalise_phone
from queue_app.notifications import sms
from queue_app.notifications.sms_gateways import TWILIO_OPTED_OUT
from queue_app.web.api import abort
from queue_app.web.input_rules import Text

blp = Blueprint("api_sms", __name__, description="SMS delivery reports, inbound STOP/START and opt-outs")
BEARER = [{"bearer": []}]
# Field names in each gateway's requests: (message id, status, error) and (sender, text).
STATUS_FIELDS = {"twilio": ("MessageSid", "MessageStatus", "ErrorCode"), "http": ("message_id", "status", "error")}
INBOUND_FIELDS = {"twilio": ("From", "Body"), "http": ("from", "text")}
MAX_FIELD = 1600  # ten SMS parts; an id or a number is far shorter


class OptOutBody(Schema):
    phone = Text(required=True, max=40, metadata={"description": "The number, international format (+886...)."})
    opted_out = fields.Boolean(required=True, metadata={"description": "true: no more SMS; false: SMS again."})


class ReportAnswer(Schema):
    id = fields.Integer(required=True, metadata={"description": "The outbox row."})
    message_id = fields.String(required=True)
    delivery_status = fields.String(required=True)


class InboundAnswer(Schema):
    from_ = fields.String(required=True, data_key="from")
    action = fields.String(allow_none=True, metadata={"description": "stop, start, or null (not a keyword)"})


class OptOutSchema(Schema):
    phone = fields.String(required=True)
    opted_out = fields.Boolean(required=True)
    source = fields.String(required=True, metadata={"description": "reply (the number's own text), staff, or carrier (the gateway refused the number as opted out)"})
    updated_at = fields.String(required=True)


def _twilio_signed() -> bool:
    token = current_app.config.get("QUEUE_APP_TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    # The URL Twilio was given (QUEUE_APP_BASE_URL), not the one a proxy forwarded to us.
    base = (current_app.config.get("QUEUE_APP_BASE_URL") or request.host_url).rstrip("/")
    query = request.query_string.decode("latin-1")
    url = base + request.path + (f"?{query}" if query else "")
    return RequestValidator(token).validate(url, request.form, signature)  # every value of a repeated field


def _gateway_signed() -> bool:
    secret = current_app.config.get("QUEUE_APP_SMS_HTTP_CALLBACK_SECRET")
    if not secret:
        return False
    if current_app.config.get("QUEUE_APP_SMS_HTTP_CALLBACK_AUTH") == "token":
        offered = request.headers.get("X-SMS-Token") or request.args.get("token") or ""
        return hmac.compare_digest(offered.encode(), secret.encode())
    expected = hmac.new(secret.encode(), request.get_data(), hashlib.sha256).hexdigest()
    offered = request.headers.get("X-SMS-Signature", "").strip()
    offered = offered.removeprefix("sha256=")
    return hmac.compare_digest(offered.encode(), expected.encode())


def _authenticated(provider: str) -> None:
    if not (_twilio_signed() if provider == "twilio" else _gateway_signed()):
        abort(403, "bad_signature", "The request is not signed by the configured SMS gateway.")


def _fields(provider: str) -> dict:
    """The request's fields: Twilio always posts a form; the generic gateway a form or JSON."""
    if provider == "http" and request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(422, "validation_failed", "The body is not a JSON object.")
        return body
    return request.form.to_dict()


def _text(body: dict, name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            abort(422, "validation_failed", f"{name}: missing.")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        abort(422, "validation_failed", f"{name}: not a string.")
    value = str(value)
    if len(value) > MAX_FIELD or "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        abort(422, "validation_failed", f"{name}: not a value we can store.")
    return value


def _report(provider: str) -> dict:
    _authenticated(provider)
    body = _fields(provider)
    id_field, status_field, error_field = STATUS_FIELDS[provider]
    message_id, word = _text(body, id_field), _text(body, status_field)
    error = _text(body, error_field, required=False)
    row = sms.record_delivery(db.session, provider, message_id, word, now=utcnow(),
                              error=f"gateway error {error}" if error else "",
                              carrier_opt_out=provider == "twilio" and error == str(TWILIO_OPTED_OUT))
    return {"id": row.id, "message_id": message_id, "delivery_status": row.delivery_status}


def _inbound(provider: str) -> tuple[str, str | None]:
    """(the sender, "stop", "start" or None)."""
    _authenticated(provider)
    body = _fields(provider)
    sender_field, text_field = INBOUND_FIELDS[provider]
    sender = _text(body, sender_field)
    return sender, sms.inbound(db.session, sender, _text(body, text_field, required=False), now=utcnow())


@blp.route("/sms/status/twilio", methods=["POST"])
@blp.response(200, ReportAnswer, description="Recorded (a report older than the row's state changes nothing).")
@blp.alt_response(403, response="FORBIDDEN")  # not signed by the gateway
@blp.alt_response(404, response="NOT_FOUND")  # no message with that id from that gateway
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")  # a field missing, or an unknown status
def twilio_status():
    """Twilio's status callback (form fields MessageSid, MessageStatus, ErrorCode), signed with
    X-Twilio-Signature; the URL is given with each message."""
    return _report("twilio")


@blp.route("/sms/status/http", methods=["POST"])
@blp.response(200, ReportAnswer, description="Recorded (a report older than the row's state changes nothing).")
@blp.alt_response(403, response="FORBIDDEN")  # not signed by the gateway
@blp.alt_response(404, response="NOT_FOUND")  # no message with that id from that gateway
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")  # a field missing, or an unknown status
def http_status():
    """The generic gateway's delivery report: `message_id`, `status` (queued, sent, delivered,
    failed, undelivered; Twilio's words too), optional `error`; JSON or form, with the shared secret."""
    return _report("http")


@blp.route("/sms/inbound/twilio", methods=["POST"])
@blp.response(200, description="Recorded; an empty TwiML answer (no reply is sent).")
@blp.alt_response(403, response="FORBIDDEN")  # not signed by the gateway
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")  # no sender
def twilio_inbound():
    """Twilio's incoming-message webhook (From, Body), signed: STOP and the other opt-out words
    stop SMS to the sender, START or UNSTOP lets them through again; other texts are ignored."""
    _inbound("twilio")
    # Twilio answers STOP/START itself (its Advanced Opt-Out); an empty TwiML sends nothing more.
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', mimetype="text/xml")


@blp.route("/sms/inbound/http", methods=["POST"])
@blp.response(200, InboundAnswer)
@blp.alt_response(403, response="FORBIDDEN")  # not signed by the gateway
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")  # no sender
def http_inbound():
    """The generic gateway's inbound text (`from`, `text`; JSON or form, with the shared secret)."""
    sender, word = _inbound("http")
    return {"from_": sms.normalise_number(sender), "action": word}


@blp.route("/sms/opt-outs", methods=["POST"])
@blp.arguments(OptOutBody())
@blp.response(200, OptOutSchema)
@blp.doc(security=BEARER)
def set_opt_out(body):
    """Staff stop SMS to a number (a customer asked at the counter); lifting an opt-out needs a manager."""
    staff = require_staff("staff" if body["opted_out"] else "manager")
    number = normalise_phone(body["phone"])
    row = sms.set_opt_out(db.session, number, body["opted_out"], source="staff",
                          detail=f"staff {staff.id}", now=utcnow())
    return {"phone": row.number, "opted_out": row.opted_out, "source": row.source,
            "updated_at": row.updated_at.isoformat(timespec="seconds")}
