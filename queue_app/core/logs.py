"""Request ids and logs: one JSON object per line when QUEUE_APP_LOG_FORMAT=json.

Every request gets an id: the caller's `X-Request-ID` when it looks like one (a proxy's or a
client's, so a request can be followed through nginx, the app and the receiver of a webhook),
else a new random one. It is sent back in the response's `X-Request-ID` and added to every log
line written while the request runs. After each request one access line is logged (logger
`queue_app.access`) with the method, path, status and duration.
"""
import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import g, has_request_context, request

from queue_app.core.request_line import WAITED_KEY

HEADER = "X-Request-ID"
REDACTED = "[redacted]"
# Credentials in URLs never reach a log line: the token of a ticket, booking or feedback link
# (/t/, /a/, /f/ and their API paths; numeric staff ids stay) and a kiosk's ?device= token.
_TOKEN_PATH = re.compile(
    r"(?<![\w.~%-])((?:https?://[^/\s\"?]+)?"
    r"(?:/(?:t|a|f)/|/api/v1/(?:appointments|feedback)/|/api/v1/tickets/(?!\d+(?:[/?#\s\"]|$))))"
    r"[^/?#\s\"]+"
)
_TOKEN_QUERY = re.compile(r"([?&](?:device|token)=)[^&#\s\"]+", re.IGNORECASE)
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")  # anything else (or too long) gets a fresh id
_MARK = "_queue_app_handler"
access_log = logging.getLogger("queue_app.access")

# Attributes every LogRecord has; anything else passed with `extra=` is copied into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """`text` with URL tokens replaced by [redacted] (request lines, paths, whole URLs)."""
    return _TOKEN_QUERY.sub(r"\1" + REDACTED, _TOKEN_PATH.sub(r"\1" + REDACTED, text))


class RedactFilter(logging.Filter):
    """Redacts URL tokens in a record's message and arguments (Werkzeug's request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def safe_path() -> str:
    """The request's path without its tokens, for logs."""
    return redact(request.path)


def request_id() -> str | None:
    return getattr(g, "request_id", None) if has_request_context() else None


class RequestContextFilter(logging.Filter):
    """Adds the request's id, method and path to records written while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(record, "request_id", None) or getattr(g, "request_id", None)
            record.method = getattr(record, "method", None) or request.method
            record.path = getattr(record, "path", None) or safe_path()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                line[key] = value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{text} [request {rid}]" if rid else text


def configure(log_format: str, level: str = "INFO") -> None:
    """Once per process: a stderr handler on the root logger with the chosen format."""
    root = logging.getLogger()
    if any(getattr(h, _MARK, False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    if log_format == "json":
        # Werkzeug's development server logs its own access lines as text: ours replace them.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)


def init_app(app) -> None:
    # Werkzeug's development server (`queue-app run`) prints each request line with its query.
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactFilter) for f in werkzeug.filters):
        werkzeug.addFilter(RedactFilter())
    if app.config.get("QUEUE_APP_LOG_FORMAT") == "json":
        configure("json", app.config.get("QUEUE_APP_LOG_LEVEL", "INFO"))

    @app.before_request
    def _start():
        given = request.headers.get(HEADER, "")
        g.request_id = given if _ACCEPTED.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = getattr(g, "request_id", None)
        if rid:
            response.headers[HEADER] = rid
            started = getattr(g, "request_started", None)
            duration = round((time.perf_counter() - started) * 1000, 1) if started else None
            waited = request.environ.get(WAITED_KEY)  # for its turn in the request line, before `duration`
            path = safe_path()
            access_log.info("%s %s %s", request.method, path, response.status_code,
                            extra={"request_id": rid, "method": request.method, "path": path,
                                   "status": response.status_code, "duration_ms": duration,
                                   "waited_ms": None if waited is None else round(waited * 1000, 1),
                                   "remote_addr": request.remote_addr})
        return response
