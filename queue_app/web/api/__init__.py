"""REST API under /api/v1 with its OpenAPI document (flask-smorest)."""
import re
import threading

import flask_smorest
from flask import make_response, render_template
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from queue_app.core.errors import DomainError, http_status
from queue_app.core.extensions import csrf
from queue_app.web.errors import API_PREFIX, domain_error_response, error_response, is_api_request


class ErrorDetail(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String())


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetail, required=True)


def _code_for(error: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")


class Api(flask_smorest.Api):
    """flask-smorest with this project's error body: {"error": {"code", "message"}}.

    Pages outside /api keep Flask's HTML errors.
    """

    ERROR_SCHEMA = ErrorSchema

    # The OpenAPI document is written when first read (openapi.json, the docs page, the docs
    # site's API reference), not at start-up: describing every route was about half of
    # create_app's time, paid by every worker and test app that never serves the document.
    def __init__(self, *args, **kwargs):
        self._spec = None
        self._undocumented: list[tuple] = []  # (blueprint, name, parameters) registered, not yet described
        self._describing = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def spec(self):
        if self._undocumented:
            with self._describing:  # emptied only once described: a second reader waits, never sees half
                for blueprint, name, parameters in self._undocumented:
                    blueprint.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
                    self._spec.tag({"name": name, "description": blueprint.description})
                self._undocumented = []
        return self._spec

    @spec.setter
    def spec(self, value):
        self._spec = value

    def register_blueprint(self, blp, *, parameters=None, **options):
        """As flask-smorest's, with the blueprint's routes described in the document later (`spec`)."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

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
    if is_api_request():
        headers = {"Retry-After": str(error.retry_after)} if hasattr(error, "retry_after") else None
        return domain_error_response(error, headers=headers)
    return error.message, http_status(error)


def abort(status: int, code: str, message: str, headers: dict | None = None):
    flask_smorest.abort(status, error_code=code, message=message, headers=headers or {})


EXTENSION = "queue_app.api"


def init_app(app) -> None:
    """The API itself, one per app (two apps in a process keep their own OpenAPI documents); each
    feature's init_app then adds its blueprint with `register_api`."""
    api = Api(app)
    api.spec.options["security"] = []
    app.extensions[EXTENSION] = api
    app.register_error_handler(DomainError, handle_domain_error)


def api_of(app) -> Api:
    return app.extensions[EXTENSION]


def register_api(app, blueprint) -> None:
    api_of(app).register_blueprint(blueprint, url_prefix=API_PREFIX)
    csrf.exempt(blueprint)  # bearer tokens, not cookies: no cross-site request forgery to stop
