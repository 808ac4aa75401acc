"""Abuse limits on the public and device-facing writes, with the limiter switched on."""
from helpers import meta_csrf

from queue_app.core.extensions import db


def test_a_kiosk_tapped_in_a_loop_is_slowed_down_per_device(limited_app):
    app, token = limited_app(KIOSK_TICKET_RATE_LIMIT="3 per minute")
    client = app.test_client()
    client.get(f"/kiosk/demo?device={token}")
    csrf = meta_csrf(client.get("/kiosk/demo").data)
    taps = [client.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": csrf}).status_code
            for _ in range(4)]
    assert taps == [201, 201, 201, 429]
    other = app.test_client()  # another kiosk device is not affected
    with app.app_context():
        from queue_app.catalogue import operations as catalogue

        _device, second = catalogue.create_kiosk_device(db.session, "demo", "Second kiosk")
    other.get(f"/kiosk/demo?device={second}")
    other_csrf = meta_csrf(other.get("/kiosk/demo").data)
    assert other.post("/kiosk/demo/tickets", json={"service": "A"},
                      headers={"X-CSRFToken": other_csrf}).status_code == 201


def test_anonymous_remote_tickets_are_limited_per_address(limited_app):
    app, _token = limited_app(PUBLIC_TICKET_RATE_LIMIT="2 per minute")
    client = app.test_client()
    with app.app_context():
        from queue_app.catalogue import operations as catalogue

        catalogue.update_branch(db.session, "demo", allow_remote_tickets=True)
    answers = [client.post("/api/v1/branches/demo/tickets", json={"service": "A"}).status_code for _ in range(3)]
    assert answers == [201, 201, 429]
