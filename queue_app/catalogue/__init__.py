"""Branches, services and counters: the catalogue every other feature reads, with its manager pages."""


def init_app(app) -> None:
    from flask_babel import get_locale

    from queue_app.catalogue import api, pages
    from queue_app.catalogue.models import Branch, Service
    from queue_app.catalogue.operations import localized_name, pick_name
    from queue_app.core import row_cache
    from queue_app.web.api import register_api

    # {{ service|localized }}: a service's or counter's name in the page's language, else its `name`;
    # {{ pick_name(status.service_name, status.service_names) }} the same over a read model's values.
    app.jinja_env.filters["localized"] = lambda thing: localized_name(thing, get_locale())
    app.jinja_env.globals["pick_name"] = lambda name, names: pick_name(name, names, get_locale())
    app.register_blueprint(pages.bp)
    register_api(app, api.blp)
    row_cache.watch(Branch)  # kept for get_branch
    row_cache.watch(Service)  # kept for the issuing path's service lookup
