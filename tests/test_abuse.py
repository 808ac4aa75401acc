"""Abuse limits on the public and device-facing writes, with the limiter switched on."""
import shutil

import pytest

from queue_app.cli import seed_demo_data
from queue_app.extensions import db

from conftest import make_app
from test_live_pages import meta_csrf


@pytest.fixture
def limited(tmp_path, migrated_db):
    def build(**limits):
        path = tmp_path / "limited.sqlite"
        shutil.copy(migrated_db, path)
        app = make_app(path, RATELIMIT_ENABLED=True, **limits)
        with app.app_context():
            token = seed_demo_data()
        built.append(app)
        return app, token

    built = []
    yield build
    for app in built:
        with app.app_context():
            db.engine.dispose()


def test_a_kiosk_tapped_in_a_loop_is_slowed_down_per_device(limited):
    app, token = limited(KIOSK_TICKET_RATE_LIMIT="3 per minute")
    client = app.test_client()
    client.get(f"/kiosk/demo?device={token}")
    csrf = meta_csrf(client.get("/kiosk/demo").data)
    taps = [client.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": csrf}).status_code
            for _ in range(4)]
    assert taps == [201, 201, 201, 429]
    other = app.test_client()  # another kiosk device is not affected
    with app.app_context():
        from queue_app.domain import catalogue

        _device, second = catalogue.create_kiosk_device(db.session, "demo", "Second kiosk")
    other.get(f"/kiosk/demo?device={second}")
    other_csrf = meta_csrf(other.get("/kiosk/demo").data)
    assert other.post("/kiosk/demo/tickets", json={"service": "A"},
                      headers={"X-CSRFToken": other_csrf}).status_code == 201


def test_anonymous_remote_tickets_are_limited_per_address(limited):
    app, _token = limited(PUBLIC_TICKET_RATE_LIMIT="2 per minute")
    client = app.test_client()
    with app.app_context():
        from queue_app.domain import catalogue

        catalogue.update_branch(db.session, "demo", allow_remote_tickets=True)
    answers = [client.post("/api/v1/branches/demo/tickets", json={"service": "A"}).status_code for _ in range(3)]
    assert answers == [201, 201, 429]
