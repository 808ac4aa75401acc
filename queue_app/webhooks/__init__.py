"""Signed outbound webhooks: endpoints per branch, an outbox written with each change, delivery with retries."""


def init_app(app) -> None:
    from queue_app.web.api import register_api
    from queue_app.webhooks import api, operations, pages

    operations.install()  # session hooks: the outbox row is written in the change's own transaction
    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
