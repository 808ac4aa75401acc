"""Forecast, staffing plan, what-if, planning rules, branch statistics and the manager dashboard."""


def init_app(app) -> None:
    from queue_app.planning import api, dashboard, reports_api
    from queue_app.web.api import register_api

    app.register_blueprint(dashboard.bp)
    register_api(app, api.blp)
    register_api(app, reports_api.blp)
