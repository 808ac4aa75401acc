"""/healthz for load balancers and orchestrators, and a clear 503 while the database is unreachable."""
import logging

from flask import Blueprint, current_app, jsonify, make_response
from flask_babel import gettext as _
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from queue_app.core.extensions import db
from queue_app.web.errors import error_response, is_api_request

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
RETRY_AFTER_S = 2


@bp.app_errorhandler(OperationalError)
@bp.app_errorhandler(InterfaceError)
def database_unavailable(error):
    """The database went away (restart, failover, network): 503 with Retry-After, never a 500.

    The pool drops the broken connection (and pre-pings the others), so the next request gets a
    fresh one as soon as the server is back. On SQLite a lock held past the busy timeout ends here too.
    """
    log.warning("database unavailable: %s", str(error.orig if getattr(error, "orig", None) else error).strip()[:300])
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the session is removed at teardown anyway
        pass

    if is_api_request():
        response = error_response(503, "database_unavailable",
                                  "The database cannot be reached right now; try again in a moment.")
    else:
        response = make_response(_("The service is briefly unavailable. Please try again in a moment."), 503)
        response.mimetype = "text/plain"
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as error:  # reported, not raised: this endpoint must answer
        return f"error: {type(error).__name__}"
    finally:
        db.session.rollback()


def _message_queue() -> str:
    url = current_app.config.get("QUEUE_APP_MESSAGE_QUEUE")
    if not url:
        return "not configured"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


@bp.get("/healthz")
def healthz():
    """200 while the instance can serve: without the database it cannot (503); without the message
    queue it still issues, calls and pushes to its own clients, so it stays in rotation as
    `degraded` (taking every instance out because Redis is down would turn a degradation into an
    outage)."""
    checks = {"database": _database(), "message_queue": _message_queue()}
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif checks["message_queue"] not in ("ok", "not configured"):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    response = jsonify({"status": status, **checks})
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    return response
