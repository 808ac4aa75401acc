"""Delivery drivers for outbox rows: one interface, `send(notification) -> None`, raising on failure.

The outbox sender (notifications/notify.py `send_due`) renders a row's `payload` (subject, body, and for
mail an optional .ics) before it calls a driver, so drivers only turn that payload into a message.
A driver that raises leaves the row for a retry with backoff; `PermanentFailure` ends it at once
(an address the server refuses will not become valid by retrying). An SMS gateway's driver returns
`Accepted` with its message id (sms_gateways.py); mail drivers return nothing.
"""
import json
import logging
import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol, TextIO
from urllib.parse import unquote, urlsplit

from queue_app.notifications import sms
from queue_app.notifications.models import Notification
from queue_app.notifications.outcomes import Accepted, PermanentFailure
from queue_app.notifications.sms_gateways import (
    TIMEOUT_S,
    TWILIO_API_URL,
    HttpGatewayDriver,
    TwilioDriver,
)

log = logging.getLogger(__name__)

DEFAULT_MAIL_FROM = "queue@localhost"
SMTP_TIMEOUT = 20  # seconds; a hung server must not hold the sender forever
DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


__all__ = ["Accepted", "PermanentFailure"]  # defined in outcomes.py, long imported from here


class Driver(Protocol):
    def send(self, notification: Notification) -> Accepted | None: ...


def build_email(notification: Notification, mail_from: str) -> EmailMessage:
    """A UTF-8 text mail, with the booking's .ics as a text/calendar attachment when there is one."""
    payload = notification.payload or {}
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = notification.recipient
    message["Subject"] = payload.get("subject", "")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    message.set_content(payload.get("body", ""), charset="utf-8")
    calendar = payload.get("ics")
    if calendar:
        # Bytes keep the CRLF line ends RFC 5545 requires (text parts get re-wrapped by email).
        # `method` in the content type is what makes mail clients offer "add to calendar".
        message.add_attachment(
            calendar.encode("utf-8"), maintype="text", subtype="calendar", filename="booking.ics",
            params={"method": payload.get("ics_method", "REQUEST"), "charset": "utf-8"},
        )
    return message


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpSettings:
    """`smtp://user:pass@host:port`, `smtps://...` (TLS from the start), `smtp+starttls://...`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"QUEUE_APP_SMTP_URL: unknown scheme '{parts.scheme}' (smtp, smtps, smtp+starttls)")
    if not parts.hostname:
        raise ValueError("QUEUE_APP_SMTP_URL: no host")
    return SmtpSettings(
        scheme=scheme, host=parts.hostname, port=parts.port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpDriver:
    """Mail through an SMTP server; one connection per message (bookings are not bulk mail)."""

    def __init__(self, url: str, mail_from: str = DEFAULT_MAIL_FROM, timeout: float = SMTP_TIMEOUT):
        self.settings = parse_smtp_url(url)
        self.mail_from = mail_from
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.scheme == "smtps":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=ssl.create_default_context())
        return smtplib.SMTP(s.host, s.port, timeout=self.timeout)

    def send(self, notification: Notification) -> None:
        message = build_email(notification, self.mail_from)
        with self._connect() as smtp:
            if self.settings.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.settings.username:
                smtp.login(self.settings.username, self.settings.password or "")
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                raise PermanentFailure(f"recipient refused: {error.recipients}") from error


class ConsoleDriver:
    """Prints messages instead of sending them: the demo, and development without SMTP."""

    def __init__(self, stream: TextIO | None = None, mail_from: str = DEFAULT_MAIL_FROM):
        self.stream = stream
        self.mail_from = mail_from

    def send(self, notification: Notification) -> None:
        payload = notification.payload or {}
        stream = self.stream or sys.stdout  # looked up late, so pytest's capsys sees it
        rule = "-" * 72
        lines = [rule, f"{notification.channel.upper()} to {notification.recipient}  [{notification.template}]"]
        if notification.channel == "email":
            lines += [f"From: {self.mail_from}", f"Subject: {payload.get('subject', '')}", ""]
        lines.append(payload.get("body", ""))
        if payload.get("ics"):
            lines.append(f"[attachment booking.ics, METHOD:{payload.get('ics_method', 'REQUEST')}]")
        lines.append(rule)
        print("\n".join(lines), file=stream, flush=True)


class LoggingSmsDriver:
    """Logs the SMS text (development); the real gateways (Twilio, a local carrier's API) are in sms_gateways.py."""

    def send(self, notification: Notification) -> None:
        log.info("SMS to %s: %s", notification.recipient, (notification.payload or {}).get("body", ""))


class ChannelDriver:
    """Routes each row to the driver of its channel (`email` or `sms`). An SMS longer than
    `max_sms_segments` parts is refused before any gateway sees it (notifications/sms.py)."""

    def __init__(self, drivers: dict[str, Driver], max_sms_segments: int = sms.DEFAULT_MAX_SEGMENTS):
        self.drivers = drivers
        self.max_sms_segments = max_sms_segments

    def send(self, notification: Notification) -> Accepted | None:
        driver = self.drivers.get(notification.channel)
        if driver is None:
            raise PermanentFailure(f"no driver for channel '{notification.channel}'")
        if notification.channel == "sms":
            counted = sms.segments((notification.payload or {}).get("body", ""))
            if counted.parts > self.max_sms_segments:
                raise PermanentFailure(f"text too long: {counted.parts} SMS parts ({counted.encoding}, "
                                       f"{counted.units} units), the limit is {self.max_sms_segments}")
        return driver.send(notification)

    def close(self) -> None:
        """Lets drivers that keep connections open (Twilio's client) close them."""
        for driver in self.drivers.values():
            close = getattr(driver, "close", None)
            if close is not None:
                close()


def _sms_gateway(kind: str, config) -> Driver:
    """The Twilio or generic HTTP driver from QUEUE_APP_TWILIO_* / QUEUE_APP_SMS_HTTP_* settings."""
    base_url = (config.get("QUEUE_APP_BASE_URL") or "").rstrip("/")
    status_url = f"{base_url}/api/v1/sms/status/{kind}" if base_url else ""
    timeout = float(config.get("QUEUE_APP_SMS_TIMEOUT") or TIMEOUT_S)
    if kind == "twilio":
        return TwilioDriver(
            config.get("QUEUE_APP_TWILIO_ACCOUNT_SID") or "", config.get("QUEUE_APP_TWILIO_AUTH_TOKEN") or "",
            sender=config.get("QUEUE_APP_TWILIO_FROM") or "",
            messaging_service_sid=config.get("QUEUE_APP_TWILIO_MESSAGING_SERVICE_SID") or "",
            status_callback=status_url, api_url=config.get("QUEUE_APP_TWILIO_API_URL") or TWILIO_API_URL,
            timeout=timeout,
        )
    headers = config.get("QUEUE_APP_SMS_HTTP_HEADERS") or {}
    try:
        headers = json.loads(headers) if isinstance(headers, str) else headers
        headers = {str(key): str(value) for key, value in headers.items()}
    except (ValueError, AttributeError):
        raise ValueError("QUEUE_APP_SMS_HTTP_HEADERS is not a JSON object") from None
    permanent = config.get("QUEUE_APP_SMS_HTTP_PERMANENT_STATUSES") or ()
    if isinstance(permanent, str):
        permanent = [part for part in permanent.replace(",", " ").split() if part]
    body_format = (config.get("QUEUE_APP_SMS_HTTP_FORMAT") or "json").lower()
    default_body = '{"to": "{to}", "text": "{text}"}' if body_format == "json" else "to={to}&text={text}"
    return HttpGatewayDriver(
        config.get("QUEUE_APP_SMS_HTTP_URL") or "", body_template=config.get("QUEUE_APP_SMS_HTTP_BODY") or default_body,
        body_format=body_format, method=config.get("QUEUE_APP_SMS_HTTP_METHOD") or "POST",
        headers=headers,
        id_field=config.get("QUEUE_APP_SMS_HTTP_ID_FIELD", "message_id") or "",
        permanent_statuses=permanent, status_callback=status_url, timeout=timeout,
    )


def driver_for(config) -> ChannelDriver:
    """The drivers the settings ask for (docs: operating/mail-and-jobs)."""
    mail_from = config.get("QUEUE_APP_MAIL_FROM") or DEFAULT_MAIL_FROM
    smtp_url = config.get("QUEUE_APP_SMTP_URL")
    mail_kind = config.get("QUEUE_APP_MAIL_DRIVER") or ("smtp" if smtp_url else "console")
    if mail_kind == "smtp":
        if not smtp_url:
            raise ValueError("QUEUE_APP_MAIL_DRIVER=smtp needs QUEUE_APP_SMTP_URL")
        mail: Driver = SmtpDriver(smtp_url, mail_from)
    elif mail_kind == "console":
        mail = ConsoleDriver(mail_from=mail_from)
    else:
        raise ValueError(f"QUEUE_APP_MAIL_DRIVER: unknown driver '{mail_kind}' (smtp, console)")
    sms_kind = config.get("QUEUE_APP_SMS_DRIVER") or "log"
    if sms_kind == "log":
        sms_driver: Driver = LoggingSmsDriver()
    elif sms_kind == "console":
        sms_driver = ConsoleDriver(mail_from=mail_from)
    elif sms_kind in ("twilio", "http"):
        sms_driver = _sms_gateway(sms_kind, config)
    else:
        raise ValueError(f"QUEUE_APP_SMS_DRIVER: unknown driver '{sms_kind}' (log, console, twilio, http)")
    max_segments = int(config.get("QUEUE_APP_SMS_MAX_SEGMENTS") or sms.DEFAULT_MAX_SEGMENTS)
    return ChannelDriver({"email": mail, "sms": sms_driver}, max_sms_segments=max_segments)
