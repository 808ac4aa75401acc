"""REST API under /api/v1 with its OpenAPI document (flask-smorest)."""
import re

import flask_smorest
from flask import jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from queue_app.core.errors import DomainError
from queue_app.core.extensions import csrf

API_PREFIX = "/api/v1"
_STATUS_FOR_KIND = {"not_found": 404, "conflict": 409, "invalid": 422, "unauthorized": 401, "locked": 429,
                    "forbidden": 403}


class ErrorDetail(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String())


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetail, required=True)


def is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def error_response(status: int, code: str, message: str, field_errors=None, headers=None):
    body = {"error": {"code": code, "message": message}}
    if field_errors:
        body["error"]["fields"] = field_errors
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _code_for(error: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")


class Api(flask_smorest.Api):
    """flask-smorest with this project's error body: {"error": {"code", "message"}}.

    Pages outside /api keep Flask's HTML errors.
    """

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        if not is_api_request():
            return error_page(error)
        data = getattr(error, "data", None) or {}
        message = data.get("message") or error.description
        field_errors = data.get("errors") or data.get("messages")
        code = data.get("error_code")
        if code is None:
            code = "validation_failed" if error.code == 422 else _code_for(error)
        if error.code == 400 and field_errors and "json" in field_errors and not code.startswith("malformed"):
            code, message = "malformed_json", "The request body is not valid JSON."
        return error_response(error.code or 500, code, message, field_errors, data.get("headers"))


def error_page(error: HTTPException):
    """Browsers get a branded page in their language; a 500 keeps Flask's plain text."""
    if (error.code or 500) >= 500:
        return error
    titles = {
        400: _l("This request could not be understood"), 403: _l("You may not open this page"),
        404: _l("Page not found"), 405: _l("This page cannot do that"), 413: _l("That was too large to send"),
        429: _l("Too many requests, please wait a moment"),
    }
    messages = {
        404: _l("The address may be mistyped, or the page has moved."),
        405: _l("Go back and try again from the page itself."),
        429: _l("Wait a minute and try again."),
    }
    response = make_response(render_template(
        "errors/http.html", status=error.code, title=titles.get(error.code, error.name),
        message=messages.get(error.code, error.description)), error.code)
    for key, value in error.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response


def handle_domain_error(error: DomainError):
    status = _STATUS_FOR_KIND.get(error.kind, 400)
    if is_api_request():
        headers = {"Retry-After": str(error.retry_after)} if hasattr(error, "retry_after") else None
        return error_response(status, error.code, error.message, error.fields or None, headers)
    return error.message, status


api = Api()


def abort(status: int, code: str, message: str, headers: dict | None = None):
    flask_smorest.abort(status, error_code=code, message=message, headers=headers or {})


def init_app(app) -> None:
    """The API itself; each feature's init_app then adds its blueprint with `register_api`."""
    api.init_app(app)
    api.spec.options["security"] = []
    app.register_error_handler(DomainError, handle_domain_error)


def register_api(blueprint) -> None:
    api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    csrf.exempt(blueprint)  # bearer tokens, not cookies: no cross-site request forgery to stop
