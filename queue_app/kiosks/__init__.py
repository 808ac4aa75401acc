"""Lobby kiosks: pairing, heartbeats, the kiosk page that issues tickets and what its printer prints."""


def init_app(app) -> None:
    from queue_app.core import row_cache
    from queue_app.kiosks import api, manage_pages, pages
    from queue_app.kiosks.models import KioskDevice
    from queue_app.web.api import register_api

    app.register_blueprint(manage_pages.bp)
    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
    # Kept for the device-token check; the heartbeat's columns change every minute and do not count.
    row_cache.watch(KioskDevice, volatile=("last_seen_at", "page_seen_at", "printer_state"))
