"""The walk-in queue: issue, call, finish; numbering, the queue order, wait estimates, "almost your turn";
the counter console, the lobby display and the ticket's public page.

What happens when a ticket is issued and when one is called: docs/pages/design/ticket-lifecycle.md.
"""


def init_app(app) -> None:
    from queue_app.tickets import api, counter_pages, display_pages, estimate_text, public_pages
    from queue_app.web.api import register_api

    estimate_text.init_app(app)  # estimate_text() for pages
    app.register_blueprint(public_pages.bp)
    app.register_blueprint(counter_pages.bp)
    app.register_blueprint(display_pages.bp)
    register_api(api.blp)
