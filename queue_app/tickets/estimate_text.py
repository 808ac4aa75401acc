"""How a wait estimate reads on a page, the same on the server and in the browser.

`estimate_texts()` gives the translated templates the page's script formats when a push arrives
(QueueApp.estimateText in static/js/live.js); `estimate_text()` renders the first view.
"""
from flask_babel import gettext as _


def estimate_texts() -> dict:
    return {
        "estimate": _("About %(m)s min (%(low)s-%(high)s)", m="{minutes}", low="{low}", high="{high}"),
        "very_soon": _("Very soon"),
        "no_counter_until": _("The first counter for this opens at %(time)s", time="{time}"),
        "opens_about": _("Counters open at %(time)s: about %(m)s min", time="{time}", m="{minutes}"),
        "no_counter": _("No counter serves this today"),
        "closed": _("The branch is closed now"),
        "display_estimate": _("about %(m)s min", m="{minutes}"),
    }


def estimate_text(estimate: dict | None, short: bool = False) -> str:
    if not estimate:
        return ""
    texts = estimate_texts()
    state = estimate.get("state")
    if state == "waiting":
        if not estimate.get("minutes"):
            return texts["very_soon"]
        return texts["display_estimate" if short else "estimate"].format(**estimate)
    if state == "no_counter":
        opens = estimate.get("opens_at")
        if opens and estimate.get("minutes") is not None:
            return texts["opens_about"].format(time=opens[11:16], minutes=estimate["minutes"])
        return texts["no_counter_until"].format(time=opens[11:16]) if opens else texts["no_counter"]
    if state == "closed":
        return texts["closed"]
    return ""


def init_app(app) -> None:
    app.jinja_env.globals["estimate_texts"] = estimate_texts
    app.jinja_env.globals["estimate_text"] = estimate_text
