"""Lobby kiosks: pairing, heartbeats, the kiosk page that issues tickets and what its printer prints."""


def init_app(app) -> None:
    from queue_app.kiosks import api, manage_pages, pages
    from queue_app.web.api import register_api

    app.register_blueprint(manage_pages.bp)
    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
