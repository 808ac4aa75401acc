"""How customer segments and tiers read on pages. The stored keys ("core", "gold") stay as they
are; pages show these translated labels. A tier a manager named stays as typed."""
from flask_babel import lazy_gettext as _l

SEGMENT_LABELS = {"core": _l("Core"), "at_risk_valuable": _l("At-risk valuable"),
                  "loyal_regular": _l("Loyal regulars"), "occasional": _l("Occasional")}
# The default tiers (customers/operations.py DEFAULT_TIERS) and the tier of everyone else.
TIER_LABELS = {"gold": _l("Gold"), "silver": _l("Silver"), "standard": _l("Standard")}
# What became of a visit in a customer's history (ticket and booking statuses).
STATUS_LABELS = {"waiting": _l("Waiting for their turn"), "called": _l("Called"), "serving": _l("Being served"),
                 "done": _l("Completed"), "no_show": _l("Missed"), "cancelled": _l("Cancelled"),
                 "booked": _l("Booked"), "checked_in": _l("Checked in")}


def segment_label(key: str | None) -> str:
    return str(SEGMENT_LABELS[key]) if key in SEGMENT_LABELS else (key or "")


def tier_label(name: str | None) -> str:
    return str(TIER_LABELS[name]) if name in TIER_LABELS else (name or "")


def status_label(status: str | None) -> str:
    return str(STATUS_LABELS[status]) if status in STATUS_LABELS else (status or "")


def init_app(app) -> None:
    app.jinja_env.globals.update(segment_label=segment_label, tier_label=tier_label, status_label=status_label,
                                 segment_labels=SEGMENT_LABELS, tier_labels=TIER_LABELS)
