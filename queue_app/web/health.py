"""/healthz for load balancers and orchestrators: the database and the message queue answer."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from queue_app.extensions import db

bp = Blueprint("health", __name__)


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
    checks = {"database": _database(), "message_queue": _message_queue()}
    healthy = all(value in ("ok", "not configured") for value in checks.values())
    response = jsonify({"status": "ok" if healthy else "unavailable", **checks})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
