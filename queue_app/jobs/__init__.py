"""Timed jobs (APScheduler): the outbox sender, no-show sweep, day close, plans, webhooks delivery."""


def init_app(app) -> None:
    from queue_app.jobs import scheduler

    scheduler.init_app(app)
