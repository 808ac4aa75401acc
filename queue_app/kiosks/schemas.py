"""API shapes of kiosk pairing and heartbeats."""
from marshmallow import Schema, fields, validate

from queue_app.kiosks import operations as kiosks
from queue_app.web.input_rules import Text


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
