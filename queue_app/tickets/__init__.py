"""The walk-in queue: issue, call, finish; numbering, the queue order, wait estimates, "almost your turn";
the counter console, the lobby display and the ticket's public page.

What happens when a ticket is issued and when one is called: docs/pages/design/ticket-lifecycle.md.
"""


def init_app(app) -> None:
    from queue_app.core import events
    from queue_app.core.extensions import db
    from queue_app.tickets import (
        api,
        counter_pages,
        display_pages,
        door_pages,
        estimate_text,
        join_pages,
        played_queue,
        public_pages,
        remote_api,
        waits_api,
    )
    from queue_app.web.api import register_api

    estimate_text.init_app(app)  # estimate_text() for pages
    with app.app_context():
        # A committed change other than a walk-in joining sends the branch's played queue to be replayed.
        events.subscribe(db.engine, played_queue.on_changes)
    app.register_blueprint(public_pages.bp)
    app.register_blueprint(counter_pages.bp)
    app.register_blueprint(display_pages.bp)
    register_api(app, api.blp)
    register_api(app, waits_api.blp)
    app.register_blueprint(join_pages.bp)  # join from home (/j/<slug>), "I'm here" (/here/<slug>/<code>)
    app.register_blueprint(door_pages.bp)  # the door's "I'm here" QR for staff to show or print (/door/<slug>)
    register_api(app, remote_api.blp)
