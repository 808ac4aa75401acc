"""Kiosk devices: pairing with a one-time code, and heartbeats with the printer's state."""
from flask import current_app, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from queue_app.accounts.access import require_kiosk
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import branch_locale
from queue_app.kiosks import operations as kiosks
from queue_app.web.input_rules import Text

blp = Blueprint("api_kiosks", __name__, description="Kiosk devices: pairing and heartbeats")
BEARER = [{"bearer": []}]


class PairRequest(Schema):
    code = Text(required=True, min=1, max=40)


class KioskTextsSchema(Schema):
    """The device's own screens (shown while the server cannot be reached), in the branch language."""

    out_of_order = fields.String(required=True)
    out_of_order_text = fields.String(required=True)
    connecting = fields.String(required=True)


class PairedSchema(Schema):
    token = fields.String(required=True)
    device_id = fields.Integer(required=True)
    device_name = fields.String(required=True)
    branch = fields.String(required=True)
    branch_name = fields.String(required=True)
    kiosk_path = fields.String(required=True)
    texts = fields.Nested(KioskTextsSchema, required=True)


class PrinterStateSchema(Schema):
    state = Text(required=True, validate=validate.OneOf(kiosks.PRINTER_STATES))
    detail = Text(max=200, load_default="")


class HeartbeatRequest(Schema):
    printer = fields.Nested(PrinterStateSchema, required=True)
    bridge_port = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=1024, max=65535))
    auto_print = fields.Boolean(load_default=True)


class HeartbeatSchema(Schema):
    ok = fields.Boolean(required=True)
    device_name = fields.String(required=True)
    branch = fields.String(required=True)
    kiosk_path = fields.String(required=True)
    texts = fields.Nested(KioskTextsSchema, required=True)


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
@blp.arguments(PairRequest)
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
@blp.arguments(HeartbeatRequest)
@blp.response(200, HeartbeatSchema)
@blp.doc(security=BEARER)
def heartbeat(body):
    """The device is alive: its printer state and print bridge port, shown on the manager page."""
    device = kiosks.record_heartbeat(db.session, require_kiosk().id, body["printer"], bridge_port=body["bridge_port"],
                                     auto_print=body["auto_print"])
    branch = device.branch
    return {"ok": True, "device_name": device.name, "branch": branch.slug,
            "kiosk_path": url_for("kiosk.home", slug=branch.slug), "texts": _texts(branch)}
