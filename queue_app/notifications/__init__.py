"""Booking mail and SMS: texts, an outbox written in the booking's transaction, delivery drivers."""


def init_app(app) -> None:
    from queue_app.notifications import sms_api
    from queue_app.web.api import register_api

    register_api(app, sms_api.blp)  # SMS gateways' delivery reports and inbound STOP/START
