"""Live updates over Socket.IO (namespace /live): committed queue changes pushed to rooms."""


def init_app(app) -> None:
    from queue_app.realtime import live

    live.init_app(app)
