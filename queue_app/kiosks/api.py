"""Kiosk devices: pairing with a one-time code, and heartbeats with the printer's state."""
from flask import current_app, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_smorest import Blueprint

from queue_app.accounts.access import require_kiosk
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import branch_locale
from queue_app.kiosks import operations as kiosks
from queue_app.kiosks.schemas import HeartbeatRequest, HeartbeatSchema, PairedSchema, PairRequest

blp = Blueprint("api_kiosks", __name__, description="Kiosk devices: pairing and heartbeats")
BEARER = [{"bearer": []}]


def _texts(branch) -> dict:
    with force_locale(branch_locale(branch)):
        return {
            "out_of_order": _("Out of order"),
            "out_of_order_text": _("Sorry, this kiosk cannot issue tickets right now. Please ask a member of staff."),
            "connecting": _("This screen returns by itself as soon as the connection is back."),
        }


def _pairing_key() -> str:
    return request.remote_addr or "unknown"


@blp.route("/kiosk/pair", methods=["POST"])
# Public (the device has no credentials yet): few tries per address, so codes cannot be guessed.
@limiter.limit(lambda: current_app.config["PAIRING_RATE_LIMIT"], key_func=_pairing_key)
@blp.arguments(PairRequest())
@blp.response(201, PairedSchema)
def pair(body):
    """Exchange a one-time pairing code from the manager page for a device token (shown once)."""
    paired = kiosks.pair_device(db.session, body["code"])
    device = paired.device
    branch = device.branch
    return {
        "token": paired.token, "device_id": device.id, "device_name": device.name, "branch": branch.slug,
        "branch_name": branch.name, "kiosk_path": url_for("kiosk.home", slug=branch.slug), "texts": _texts(branch),
    }


@blp.route("/kiosk/heartbeat", methods=["POST"])
@blp.arguments(HeartbeatRequest())
@blp.response(200, HeartbeatSchema)
@blp.doc(security=BEARER)
def heartbeat(body):
    """The device is alive: its printer state and print bridge port, shown on the manager page."""
    device = kiosks.record_heartbeat(db.session, require_kiosk().id, body["printer"], bridge_port=body["bridge_port"],
                                     auto_print=body["auto_print"])
    branch = device.branch
    return {"ok": True, "device_name": device.name, "branch": branch.slug,
            "kiosk_path": url_for("kiosk.home", slug=branch.slug), "texts": _texts(branch)}
