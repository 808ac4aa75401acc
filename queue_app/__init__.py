"""Appointment and queue management: create_app is the only place the app is assembled."""
import gc
import os
from pathlib import Path

from flask import Flask, request
from flask_babel import get_locale
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from queue_app import (
    accounts,
    audit,
    booking,
    catalogue,
    cli,
    customers,
    jobs,
    kiosks,
    notifications,
    planning,
    realtime,
    tickets,
    webhooks,
)
from queue_app.core import config as settings
from queue_app.core import events, logs, request_line, row_cache
from queue_app.core.database import configure_engine, engine_options
from queue_app.core.extensions import babel, csrf, db, limiter, login_manager, migrate
from queue_app.web import api, health, input_rules, security_headers, session_cookie

# The features, in the order they are wired: each init_app registers its pages, API, session hooks
# and template helpers. API blueprints appear in the OpenAPI document in this order.
FEATURES = (accounts, catalogue, tickets, booking, kiosks, customers, webhooks, notifications, planning, audit, realtime,
            jobs)

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def _template_folder() -> str:
    # Source checkout (and editable install): the top-level templates/ folder.
    # Built wheel: the same folder, packaged as queue_app/templates (pyproject force-include).
    top_level = PACKAGE_DIR.parent / "templates"
    return str(top_level if top_level.is_dir() else PACKAGE_DIR / "templates")


def select_locale() -> str:
    languages = ["en", "zh_Hant", "zh_Hans"]
    wanted = request.args.get("lang")
    if wanted in languages:
        return wanted
    for tag, _quality in request.accept_languages:
        tag = tag.replace("_", "-").lower()
        if tag.startswith("zh"):
            # Werkzeug's matcher gets Chinese wrong (FIELD-NOTES): map regions by hand.
            return "zh_Hant" if any(r in tag for r in ("-tw", "-hk", "-mo", "-hant")) else "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return "en"


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` ids limited to what a database integer holds: a larger one is a 404, not a 500."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    # The instance folder holds the SQLite default, the kiosk token of the demo and the scheduler
    # lock; QUEUE_APP_INSTANCE_PATH moves it (a read-only image, one folder per host).
    instance_path = os.environ.get("QUEUE_APP_INSTANCE_PATH") or None
    app = Flask(__name__, instance_relative_config=True, template_folder=_template_folder(),
                instance_path=os.path.abspath(instance_path) if instance_path else None)
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(settings.from_environment(app.instance_path))
    if config:
        app.config.update(config)
        if config.get("SECRET_KEY") and "SECRET_KEY_IS_EPHEMERAL" not in config:
            app.config["SECRET_KEY_IS_EPHEMERAL"] = False  # a key given here is as good as the environment's
    # Production is the default (gunicorn, `queue-app run`); `queue-app demo` and the tests set
    # QUEUE_APP_ENV=development. Commands that serve nothing (init-db, tools) pass
    # QUEUE_APP_REQUIRE_SECRET_KEY=False (cli.py).
    if app.config["QUEUE_APP_ENV"] == "production":
        if app.config["SECRET_KEY_IS_EPHEMERAL"] and app.config.get("QUEUE_APP_REQUIRE_SECRET_KEY", True):
            raise RuntimeError("QUEUE_APP_ENV=production (the default) needs QUEUE_APP_SECRET_KEY: sessions, staff "
                               "tokens and kiosk registrations would not survive a restart or work across "
                               "instances. For a try-out on this machine use `queue-app demo`, or set "
                               "QUEUE_APP_ENV=development.")
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )

    if app.config["QUEUE_APP_PROXY_COUNT"]:
        hops = app.config["QUEUE_APP_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # Requests take turns in arrival order. Inside the Socket.IO middleware (a feature, below),
    # so its long-polls and WebSockets stay out of the line.
    request_line.configure(app.config["QUEUE_APP_REQUEST_LINE_SLICE_MS"] / 1000)
    app.wsgi_app = request_line.InLine(app.wsgi_app)
    logs.init_app(app)  # first: request ids and the access line wrap every other hook
    db.init_app(app)
    events.install()  # queue changes are published after commit, forgotten on rollback
    row_cache.install()  # rows read on nearly every request, kept per process behind a version
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    app.session_interface = session_cookie.CookieFirstSessions()
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
    limiter.init_app(app)
    input_rules.init_app(app)  # JSON nested too deeply, NUL in the path: refused before any view reads them
    api.init_app(app)
    for feature in FEATURES:
        feature.init_app(app)
    app.register_blueprint(health.bp)
    security_headers.init_app(app)
    cli.init_app(app)
    return app


def freeze_start_up_objects() -> None:
    """For a process about to serve: what start-up loaded lives as long as the process, so keep it
    out of the garbage collector's full passes. A full pass over those ~200,000 objects took about
    100 ms, a pause every request in flight waited through; frozen, a few ms (docs: benchmarks)."""
    gc.collect()  # start-up's own garbage first: frozen objects are never collected
    gc.freeze()
