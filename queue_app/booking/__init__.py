"""Online booking: availability, booking, changes and cancellation, kiosk check-in, no-shows."""


def init_app(app) -> None:
    from queue_app.booking import api, pages
    from queue_app.web.api import register_api

    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
