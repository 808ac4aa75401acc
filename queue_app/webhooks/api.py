"""Outbound webhooks per branch (managers of the branch, admins): endpoints, delivery log, tests, retries."""
from datetime import timedelta

from flask_smorest import Blueprint

from queue_app.accounts.access import require_staff
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.web.api import abort
from queue_app.webhooks import operations as webhooks
from queue_app.webhooks.models import WebhookDelivery, WebhookEndpoint
from queue_app.webhooks.schemas import (
    DeliveriesQuery,
    DeliverySchema,
    EndpointCreate,
    EndpointSchema,
    EndpointUpdate,
    EndpointWithSecret,
    RotateQuery,
    SecretSchema,
)

blp = Blueprint("api_webhooks", __name__, description="Signed outbound webhooks and their delivery log")
BEARER = [{"bearer": []}]


def _iso(moment):
    return moment.isoformat(timespec="seconds") if moment else None


def _endpoint_json(endpoint, secret: str | None = None) -> dict:
    body = {"id": endpoint.id, "branch": endpoint.branch.slug, "url": endpoint.url,
            "description": endpoint.description, "event_types": list(endpoint.event_types),
            "active": endpoint.active, "created_at": _iso(endpoint.created_at),
            "secret_hint": "…" + endpoint.secret[-4:]}
    if secret is not None:
        body["secret"] = secret
    return body


def _delivery_json(delivery, attempts) -> dict:
    return {"id": delivery.id, "event_id": delivery.event_id, "event_type": delivery.event_type,
            "status": delivery.status, "attempts": delivery.attempts, "created_at": _iso(delivery.created_at),
            "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
            "last_attempt_at": _iso(delivery.last_attempt_at), "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error, "delivered_at": _iso(delivery.delivered_at),
            "attempt_log": [{"number": a.number, "started_at": _iso(a.started_at), "duration_ms": a.duration_ms,
                             "status_code": a.status_code, "error": a.error} for a in attempts]}


def _managed_endpoint(endpoint_id: int):
    """The endpoint, if the caller manages its branch (who is asked first, so strangers get 401/403)."""
    staff = require_staff("manager")
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404, "webhook_not_found", f"No webhook {endpoint_id}.")
    if not staff.can_access_branch(endpoint.branch_id):
        abort(403, "other_branch", "You do not manage this branch.")
    return endpoint, staff


@blp.route("/branches/<slug>/webhooks", methods=["GET"])
@blp.response(200, EndpointSchema(many=True))
@blp.doc(security=BEARER)
def list_webhooks(slug):
    """The branch's webhook endpoints (secrets are not shown again)."""
    require_staff("manager")
    branch = catalogue.get_branch(db.session, slug)
    require_staff("manager", branch.id)
    return [_endpoint_json(e) for e in webhooks.branch_endpoints(db.session, branch.id)]


@blp.route("/branches/<slug>/webhooks", methods=["POST"])
@blp.arguments(EndpointCreate())
@blp.response(201, EndpointWithSecret)
@blp.doc(security=BEARER)
def create_webhook(body, slug):
    """Add an endpoint; the answer carries its signing secret, once."""
    require_staff("manager")
    branch = catalogue.get_branch(db.session, slug)
    staff = require_staff("manager", branch.id)
    created = webhooks.create_endpoint(db.session, branch.slug, body["url"], body["event_types"],
                                       description=body["description"], active=body["active"],
                                       secret=body.get("secret"), created_by_id=staff.id)
    return _endpoint_json(created.endpoint, created.secret)


@blp.route("/webhooks/<int:endpoint_id>", methods=["GET"])
@blp.response(200, EndpointSchema)
@blp.doc(security=BEARER)
def get_webhook(endpoint_id):
    return _endpoint_json(_managed_endpoint(endpoint_id)[0])


@blp.route("/webhooks/<int:endpoint_id>", methods=["PATCH"])
@blp.arguments(EndpointUpdate())
@blp.response(200, EndpointSchema)
@blp.doc(security=BEARER)
def update_webhook(body, endpoint_id):
    """Change the URL, the event types, the description, or switch it off (pending events are then dropped)."""
    endpoint, _staff = _managed_endpoint(endpoint_id)
    return _endpoint_json(webhooks.update_endpoint(db.session, endpoint.id, **body))


@blp.route("/webhooks/<int:endpoint_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def delete_webhook(endpoint_id):
    """Remove the endpoint with its pending deliveries and delivery log."""
    endpoint, _staff = _managed_endpoint(endpoint_id)
    webhooks.delete_endpoint(db.session, endpoint.id)


@blp.route("/webhooks/<int:endpoint_id>/rotate-secret", methods=["POST"])
@blp.arguments(RotateQuery(), location="query")
@blp.response(200, SecretSchema)
@blp.doc(security=BEARER)
def rotate_webhook_secret(query, endpoint_id):
    """A new signing secret, used from the next attempt on; shown once. The old one signs too
    (a second signature in the header) for `overlap_hours`, so the receiver can switch over."""
    endpoint, _staff = _managed_endpoint(endpoint_id)
    secret = webhooks.rotate_secret(db.session, endpoint.id, overlap=timedelta(hours=query["overlap_hours"]))
    until = endpoint.previous_secret_until
    return {"secret": secret, "previous_secret_until": until.isoformat() if until else None}


@blp.route("/webhooks/<int:endpoint_id>/test", methods=["POST"])
@blp.response(202, DeliverySchema)
@blp.doc(security=BEARER)
def test_webhook(endpoint_id):
    """Queue a signed `ping` event for this endpoint; the next delivery run (within seconds) sends it."""
    endpoint, _staff = _managed_endpoint(endpoint_id)
    delivery = webhooks.send_test(db.session, endpoint.id)
    return _delivery_json(delivery, [])


@blp.route("/webhooks/<int:endpoint_id>/deliveries", methods=["GET"])
@blp.arguments(DeliveriesQuery(), location="query")
@blp.response(200, DeliverySchema(many=True))
@blp.doc(security=BEARER)
def webhook_deliveries(query, endpoint_id):
    """The delivery log, newest first: each event with its status and every attempt (status code, error, time)."""
    endpoint, _staff = _managed_endpoint(endpoint_id)
    rows = webhooks.deliveries(db.session, endpoint.id, limit=query["limit"], status=query.get("status"))
    attempts = webhooks.attempts_of(db.session, [r.id for r in rows])
    return [_delivery_json(r, attempts[r.id]) for r in rows]


@blp.route("/webhook-deliveries/<int:delivery_id>/retry", methods=["POST"])
@blp.response(200, DeliverySchema)
@blp.doc(security=BEARER)
def retry_webhook_delivery(delivery_id):
    """One more attempt, at once, for a failed delivery."""
    require_staff("manager")
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        abort(404, "delivery_not_found", f"No webhook delivery {delivery_id}.")
    _managed_endpoint(delivery.endpoint_id)
    delivery = webhooks.retry_delivery(db.session, delivery_id)
    return _delivery_json(delivery, webhooks.attempts_of(db.session, [delivery.id])[delivery.id])
