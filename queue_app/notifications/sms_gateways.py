"""Real SMS gateways behind the outbox's driver interface (`send(notification)`, mail.py):
Twilio, and a generic HTTP gateway for local carriers (URL, method, headers, a body template).

Each `send` returns `Accepted` with the gateway's message id (the outbox stores it on the row,
and delivery status callbacks, sms_api.py, find the row by it). A network error, a timeout or an
error answer raises `GatewayError`, which the sender retries with its backoff; a rejection that
retrying cannot fix (an invalid or unreachable number) raises `PermanentFailure` and the row
fails at once. Configuration: docs/pages/operating/mail-and-jobs.md.
"""
import json
import logging
import re
from urllib.parse import quote_plus, urlsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from queue_app.notifications.models import Notification
from queue_app.notifications.outcomes import (
    Accepted,
    PermanentFailure,
    RecipientOptedOut,
)
from queue_app.notifications.sms import STATUS_WORDS

log = logging.getLogger(__name__)

TIMEOUT_S = 15  # a hung gateway must not hold the sender; the row is retried
TWILIO_API_URL = "https://api.twilio.com"
# Twilio error codes that mean this number will not take SMS from us (retrying cannot help):
# invalid or unreachable number, landline, region not enabled, and 21610, the number said STOP.
TWILIO_PERMANENT_CODES = frozenset({21211, 21214, 21217, 21401, 21407, 21408, 21421, 21610, 21612, 21614})
TWILIO_OPTED_OUT = 21610  # the number replied STOP at the carrier: it goes on our opt-out list too
_PLACEHOLDER = re.compile(r"\{(to|text|status_url)\}")


class GatewayError(Exception):
    """The gateway could not be reached or answered with an error: retried with backoff."""


def _text(notification: Notification) -> str:
    return (notification.payload or {}).get("body", "")


class ApiUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client with the API's scheme and host replaced by `api_url`. Subclassing
    the client and overriding `request` is the library's documented way to change how it talks
    HTTP; it points the driver at a fake gateway on loopback in tests (or at a relay)."""

    def __init__(self, api_url: str, timeout: float = TIMEOUT_S):
        super().__init__(timeout=timeout)
        self.api_url = api_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        return super().request(method, self.api_url + parts.path + (f"?{parts.query}" if parts.query else ""),
                               *args, **kwargs)


class TwilioDriver:
    """SMS through Twilio's Messages API, from a number or a messaging service, with our status
    callback URL on each message."""

    provider = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, sender: str = "", messaging_service_sid: str = "",
                 status_callback: str = "", api_url: str = TWILIO_API_URL, timeout: float = TIMEOUT_S):
        if not account_sid or not auth_token:
            raise ValueError("QUEUE_APP_SMS_DRIVER=twilio needs QUEUE_APP_TWILIO_ACCOUNT_SID and "
                             "QUEUE_APP_TWILIO_AUTH_TOKEN")
        if not sender and not messaging_service_sid:
            raise ValueError("QUEUE_APP_SMS_DRIVER=twilio needs QUEUE_APP_TWILIO_FROM or "
                             "QUEUE_APP_TWILIO_MESSAGING_SERVICE_SID")
        self.sender, self.messaging_service_sid = sender, messaging_service_sid
        self.status_callback = status_callback
        self.http = ApiUrlHttpClient(api_url or TWILIO_API_URL, timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)

    def close(self) -> None:
        """Closes the pooled connections to Twilio (the sender makes a driver per run)."""
        if self.http.session is not None:
            self.http.session.close()

    def send(self, notification: Notification) -> Accepted:
        fields = {"to": notification.recipient, "body": _text(notification)}
        if self.messaging_service_sid:
            fields["messaging_service_sid"] = self.messaging_service_sid
        else:
            fields["from_"] = self.sender
        if self.status_callback:
            fields["status_callback"] = self.status_callback
        try:
            message = self.client.api.account.messages.create(**fields)
        except TwilioRestException as error:
            if error.code == TWILIO_OPTED_OUT:
                raise RecipientOptedOut(f"Twilio: the number opted out (error {error.code}): {error.msg}") from error
            if error.code in TWILIO_PERMANENT_CODES:
                raise PermanentFailure(f"Twilio refused the number (error {error.code}): {error.msg}") from error
            raise GatewayError(f"Twilio answered {error.status} (error {error.code}): {error.msg}") from error
        except requests.RequestException as error:
            raise GatewayError(f"Twilio not reachable: {error}") from error
        return Accepted(self.provider, message.sid, STATUS_WORDS.get(message.status or "", "queued"))


def _substitute(template: str, values: dict[str, str], escape) -> str:
    """One pass, so a text containing "{to}" is sent as typed, not substituted again."""
    return _PLACEHOLDER.sub(lambda match: escape(values[match.group(1)]), template)


def _json_inside_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]  # escaped for a JSON string, without its quotes


def _lookup(document, path: str):
    """`data.id` in {"data": {"id": ...}}; None when the answer has no such field."""
    for key in path.split("."):
        if isinstance(document, dict) and key in document:
            document = document[key]
        elif isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        else:
            return None
    return None if document is None or isinstance(document, (dict, list)) else str(document)


class HttpGatewayDriver:
    """A local carrier's HTTP API: a request per message built from a body template with `{to}`,
    `{text}` (and `{status_url}`, our callback) in it. JSON templates get the values JSON-escaped
    (placed inside the template's strings); form templates get them URL-encoded. The gateway's
    message id is read from its JSON answer at `id_field` (dotted path)."""

    provider = "http"

    def __init__(self, url: str, *, body_template: str, body_format: str = "json", method: str = "POST",
                 headers: dict | None = None, id_field: str = "message_id", permanent_statuses=(),
                 status_callback: str = "", timeout: float = TIMEOUT_S):
        if not url:
            raise ValueError("QUEUE_APP_SMS_DRIVER=http needs QUEUE_APP_SMS_HTTP_URL")
        if body_format not in ("json", "form"):
            raise ValueError(f"QUEUE_APP_SMS_HTTP_FORMAT: '{body_format}' is not json or form")
        self.url, self.method, self.body_format = url, method.upper(), body_format
        self.body_template, self.id_field = body_template, id_field
        self.headers = dict(headers or {})
        if not any(key.lower() == "content-type" for key in self.headers) and self.method != "GET":
            self.headers["Content-Type"] = ("application/json; charset=utf-8" if body_format == "json"
                                            else "application/x-www-form-urlencoded")
        self.permanent_statuses = frozenset(int(code) for code in permanent_statuses)
        self.status_callback, self.timeout = status_callback, timeout
        if body_format == "json":
            try:  # a broken template is a setting to fix at start, not a message to retry forever
                json.loads(self.render("+10000000000", 'sample "text"\n'))
            except ValueError as error:
                raise ValueError(f"QUEUE_APP_SMS_HTTP_BODY is not a JSON template: {error}") from None

    def render(self, to: str, text: str) -> str:
        values = {"to": to, "text": text, "status_url": self.status_callback}
        escape = _json_inside_string if self.body_format == "json" else quote_plus
        return _substitute(self.body_template, values, escape)

    def send(self, notification: Notification) -> Accepted:
        body = self.render(notification.recipient, _text(notification))
        url, data = self.url, body.encode("utf-8")
        if self.method == "GET":  # the template is the query string
            url, data = f"{url}{'&' if '?' in url else '?'}{body}", None
        try:
            # A connection per message (requests.request closes it): SMS are few, and no socket
            # outlives the sender's run.
            response = requests.request(self.method, url, data=data, headers=self.headers,
                                        timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as error:
            raise GatewayError(f"SMS gateway not reachable: {error}") from error
        excerpt = response.text[:300]
        if response.status_code in self.permanent_statuses:
            raise PermanentFailure(f"SMS gateway refused the message ({response.status_code}): {excerpt}")
        if not 200 <= response.status_code < 300:
            raise GatewayError(f"SMS gateway answered {response.status_code}: {excerpt}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        message_id = _lookup(answer, self.id_field) if self.id_field else None
        if message_id is None:
            log.warning("SMS gateway answer has no '%s': delivery reports cannot be matched", self.id_field)
        return Accepted(self.provider, message_id)
