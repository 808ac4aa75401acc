"""Settings read from QUEUE_APP_* environment variables; the defaults run the demo."""
import os
import secrets
from datetime import timedelta

from queue_app.core.security import DEFAULT_HASH_COST


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(instance_path: str) -> dict:
    env = os.environ.get
    database_url = env("QUEUE_APP_DATABASE_URL") or (
        "sqlite:///" + os.path.join(instance_path, "queue_app.sqlite")
    )
    secret_key = env("QUEUE_APP_SECRET_KEY")
    return {
        "SECRET_KEY": secret_key or secrets.token_hex(32),
        "SECRET_KEY_IS_EPHEMERAL": not secret_key,
        # "production" (the default: gunicorn, `queue-app run`): refuse to serve without a secret key;
        # cookies only over HTTPS; HSTS. "development": `queue-app demo` and the tests.
        "QUEUE_APP_ENV": (env("QUEUE_APP_ENV") or "production").strip().lower(),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "QUEUE_APP_MESSAGE_QUEUE": env("QUEUE_APP_MESSAGE_QUEUE") or None,
        # Live displays and phones: a branch's queue snapshot goes out at most once per this window,
        # built after the burst of changes in it (calls are announced at once, not held back).
        "QUEUE_APP_PUSH_DEBOUNCE_MS": int(env("QUEUE_APP_PUSH_DEBOUNCE_MS") or 250),
        # Socket.IO accepts browsers from the page's own origin; list others, comma-separated.
        "QUEUE_APP_CORS_ORIGINS": [o.strip() for o in (env("QUEUE_APP_CORS_ORIGINS") or "").split(",")
                                   if o.strip()] or None,
        # Set explicitly: Socket.IO silently switches to gevent when it is installed (FIELD-NOTES).
        "QUEUE_APP_ASYNC_MODE": env("QUEUE_APP_ASYNC_MODE") or "threading",
        # Booking mail and SMS (queue_app/notifications/mail.py): smtp://user:pass@host:port, smtps://, smtp+starttls://.
        "QUEUE_APP_SMTP_URL": env("QUEUE_APP_SMTP_URL") or None,
        "QUEUE_APP_MAIL_FROM": env("QUEUE_APP_MAIL_FROM") or "queue@localhost",
        # "smtp" or "console" (prints); unset: smtp when an SMTP URL is set, else console.
        "QUEUE_APP_MAIL_DRIVER": env("QUEUE_APP_MAIL_DRIVER") or None,
        # "log" (logs the text), "console", "twilio" or "http" (a local carrier's HTTP API); see
        # docs/pages/operating/mail-and-jobs.md and notifications/sms_gateways.py.
        "QUEUE_APP_SMS_DRIVER": env("QUEUE_APP_SMS_DRIVER") or "log",
        # Texts longer than this many SMS parts are refused (the row fails with the reason).
        "QUEUE_APP_SMS_MAX_SEGMENTS": int(env("QUEUE_APP_SMS_MAX_SEGMENTS") or 6),
        "QUEUE_APP_SMS_TIMEOUT": float(env("QUEUE_APP_SMS_TIMEOUT") or 15),
        "QUEUE_APP_TWILIO_ACCOUNT_SID": env("QUEUE_APP_TWILIO_ACCOUNT_SID") or None,
        "QUEUE_APP_TWILIO_AUTH_TOKEN": env("QUEUE_APP_TWILIO_AUTH_TOKEN") or None,
        # The sender: a Twilio number (E.164) or alphanumeric ID, or a messaging service (wins when both).
        "QUEUE_APP_TWILIO_FROM": env("QUEUE_APP_TWILIO_FROM") or None,
        "QUEUE_APP_TWILIO_MESSAGING_SERVICE_SID": env("QUEUE_APP_TWILIO_MESSAGING_SERVICE_SID") or None,
        "QUEUE_APP_TWILIO_API_URL": env("QUEUE_APP_TWILIO_API_URL") or "https://api.twilio.com",
        # The generic HTTP gateway: where and how to send, a body template with {to}, {text} and
        # {status_url}, "json" or "form", headers as a JSON object, the message id's field in the answer.
        "QUEUE_APP_SMS_HTTP_URL": env("QUEUE_APP_SMS_HTTP_URL") or None,
        "QUEUE_APP_SMS_HTTP_METHOD": env("QUEUE_APP_SMS_HTTP_METHOD") or "POST",
        "QUEUE_APP_SMS_HTTP_HEADERS": env("QUEUE_APP_SMS_HTTP_HEADERS") or "{}",
        "QUEUE_APP_SMS_HTTP_BODY": env("QUEUE_APP_SMS_HTTP_BODY") or None,
        "QUEUE_APP_SMS_HTTP_FORMAT": env("QUEUE_APP_SMS_HTTP_FORMAT") or "json",
        "QUEUE_APP_SMS_HTTP_ID_FIELD": env("QUEUE_APP_SMS_HTTP_ID_FIELD") or "message_id",
        # Answers that mean "this number will never work" (e.g. "400,422"): the row fails at once.
        "QUEUE_APP_SMS_HTTP_PERMANENT_STATUSES": env("QUEUE_APP_SMS_HTTP_PERMANENT_STATUSES") or "",
        # The gateway's delivery reports and inbound texts (STOP): a shared secret, checked as an
        # HMAC-SHA256 of the body ("hmac") or sent as it is ("token").
        "QUEUE_APP_SMS_HTTP_CALLBACK_SECRET": env("QUEUE_APP_SMS_HTTP_CALLBACK_SECRET") or None,
        "QUEUE_APP_SMS_HTTP_CALLBACK_AUTH": (env("QUEUE_APP_SMS_HTTP_CALLBACK_AUTH") or "hmac").strip().lower(),
        "QUEUE_APP_RUN_SCHEDULER": _bool(env("QUEUE_APP_RUN_SCHEDULER"), True),
        # Webhooks to loopback, private, link-local and other non-public addresses: refused in every
        # mode unless this is on (managers type the URLs; they would reach internal services).
        "QUEUE_APP_WEBHOOK_ALLOW_PRIVATE": _bool(env("QUEUE_APP_WEBHOOK_ALLOW_PRIVATE"), False),
        # "json": one JSON object per log line (time, level, logger, message, request id, method,
        # path, status, duration); unset: plain text lines.
        "QUEUE_APP_LOG_FORMAT": (env("QUEUE_APP_LOG_FORMAT") or "text").strip().lower(),
        "QUEUE_APP_LOG_LEVEL": (env("QUEUE_APP_LOG_LEVEL") or "INFO").strip().upper(),
        "QUEUE_APP_BASE_URL": (env("QUEUE_APP_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        # Proxies in front of the app (nginx: 1). Their X-Forwarded-* headers are trusted, so rate
        # limits see the client's address, not the proxy's.
        "QUEUE_APP_PROXY_COUNT": int(env("QUEUE_APP_PROXY_COUNT") or 0),
        # Requests take turns on the process's interpreter, in arrival order; a turn longer than
        # this lets the next one start beside it. 0 turns the line off (core/request_line.py).
        "QUEUE_APP_REQUEST_LINE_SLICE_MS": float(env("QUEUE_APP_REQUEST_LINE_SLICE_MS") or 20),
        # Staff API bearer tokens expire after a working day.
        "API_TOKEN_MAX_AGE": int(env("QUEUE_APP_API_TOKEN_MAX_AGE") or 12 * 3600),
        # Public endpoints (anonymous ticket issue, login) are rate limited per client address.
        "RATELIMIT_ENABLED": _bool(env("QUEUE_APP_RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": env("QUEUE_APP_RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "PUBLIC_TICKET_RATE_LIMIT": env("QUEUE_APP_PUBLIC_TICKET_RATE_LIMIT") or "10 per minute",
        "LOGIN_RATE_LIMIT": env("QUEUE_APP_LOGIN_RATE_LIMIT") or "20 per minute",
        "AVAILABILITY_RATE_LIMIT": env("QUEUE_APP_AVAILABILITY_RATE_LIMIT") or "60 per minute",
        "BOOKING_RATE_LIMIT": env("QUEUE_APP_BOOKING_RATE_LIMIT") or "10 per minute",
        # Token and code look-ups: enough for a person, too few to guess (per address or device).
        "LOOKUP_RATE_LIMIT": env("QUEUE_APP_LOOKUP_RATE_LIMIT") or "30 per minute",
        # Personal data on visits older than this is removed nightly (customers/retention.py).
        "QUEUE_APP_RETENTION_DAYS": int(env("QUEUE_APP_RETENTION_DAYS") or 365),
        "KIOSK_TICKET_RATE_LIMIT": env("QUEUE_APP_KIOSK_TICKET_RATE_LIMIT") or "30 per minute",
        # Kiosk pairing codes (public: the device has no credentials yet), per address.
        "PAIRING_RATE_LIMIT": env("QUEUE_APP_PAIRING_RATE_LIMIT") or "10 per minute",
        # Ticket pages are opened by many phones behind one lobby Wi-Fi address: more generous.
        "TRACK_RATE_LIMIT": env("QUEUE_APP_TRACK_RATE_LIMIT") or "120 per minute",
        # The public waits feed (GET /api/v1/waits), answered from a 15 s cache: as generous.
        "WAITS_RATE_LIMIT": env("QUEUE_APP_WAITS_RATE_LIMIT") or "120 per minute",
        # Codes that prove a contact before joining from home (tickets/remote_api.py): per client
        # address, and per phone or e-mail (so one number cannot be flooded from many addresses).
        "JOIN_CODE_RATE_LIMIT": env("QUEUE_APP_JOIN_CODE_RATE_LIMIT") or "10 per 10 minutes",
        "JOIN_CODE_CONTACT_RATE_LIMIT": env("QUEUE_APP_JOIN_CODE_CONTACT_RATE_LIMIT") or "3 per 10 minutes;10 per day",
        "MAX_CONTENT_LENGTH": 256 * 1024,
        # Argon2id cost of new staff password hashes (core/security.py); the tests set a cheap one.
        "PASSWORD_HASH_COST": DEFAULT_HASH_COST,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Babel: the languages that ship.
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "zh_Hant", "zh_Hans"],
        # OpenAPI document and docs page (flask-smorest).
        "API_TITLE": "Queue app API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_REDOC_PATH": "docs",
        "OPENAPI_REDOC_URL": "/static/vendor/redoc.standalone.js",
        "API_SPEC_OPTIONS": {
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "Staff token from POST /api/v1/auth/token, or a kiosk device token.",
                    }
                }
            }
        },
    }
