"""One error path for every web response: a DomainError's status (core/errors.py) and one JSON
error body, {"error": {"code", "message", "fields"}}, for the API, the pages' fetch() calls and the kiosk."""
from flask import jsonify, request
from flask_babel import gettext

from queue_app.core.errors import DomainError, Message, http_status

API_PREFIX = "/api/v1"


def is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def error_response(status: int, code: str, message: str, field_errors=None, headers=None, extra: dict | None = None):
    """`extra`: more top-level keys beside "error" (the kiosk's walk-in offer)."""
    body = {"error": {"code": code, "message": message}}
    if field_errors:
        body["error"]["fields"] = field_errors
    body.update(extra or {})
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def domain_error_response(error: DomainError, message: str | None = None, field_errors=None, headers=None,
                          extra: dict | None = None):
    """A DomainError as JSON; `message` and `field_errors` in the reader's words when the caller has them."""
    return error_response(http_status(error), error.code, message or error.message,
                          field_errors if field_errors is not None else (error.fields or None), headers, extra)


def translated(message: str) -> str:
    """A domain message in the page's language: by its msgid where the domain gave one (Message)."""
    return gettext(message.msgid, **message.params) if isinstance(message, Message) else message
