"""Customer records: identity and proof, access, standing and tiers, churn, feedback, privacy and retention."""


def init_app(app) -> None:
    from queue_app.customers import api, labels, pages
    from queue_app.web.api import register_api

    labels.init_app(app)  # segment_label() and tier_label() for pages
    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
