"""What a kiosk's printer prints for a ticket, written here in the kiosk's language.

The kiosk page passes this `print` object unchanged to the device's loopback print bridge
(`queue-kiosk run`, kiosk/bridge.py), which lays it out on an ESC/POS printer: the device needs
no catalogs of its own. The estimate reads as on the ticket screen (tickets/estimate_text.py).
"""
from flask_babel import get_locale
from flask_babel import gettext as _

from queue_app.catalogue.models import Branch
from queue_app.catalogue.operations import pick_name
from queue_app.kiosks.models import KioskDevice
from queue_app.tickets.estimate_text import estimate_text
from queue_app.web.dates import issued_text

BRIDGE_HOST = "http://127.0.0.1"


def print_payload(branch: Branch, status: dict, track_url: str, note: str | None = None) -> dict:
    """`status` is lobby.ticket_status(); `issued_at` is already the branch's local time."""
    lines = [_("People ahead of you: %(n)s", n=status["ahead"])]
    estimate = status.get("estimate") or {}
    wait = estimate_text(estimate)  # the same words as the ticket screen
    if wait and estimate.get("state", "waiting") == "waiting":
        lines.append(_("Estimated wait: %(estimate)s", estimate=wait))
    elif wait:
        lines.append(wait)  # "The branch is closed now", "The first counter for this opens at 09:00"
    if note:
        lines.insert(0, note)
    return {
        "branch": branch.name,
        "caption": _("Your number"),
        "label": status["label"],
        "service": pick_name(status["service_name"], status.get("service_names"), get_locale()),
        "time": issued_text(status.get("issued_at") or ""),  # in the kiosk's language
        "lines": lines,
        "track_url": track_url,
        "qr_hint": _("Scan to follow your turn on your phone"),
        "footer": _("Please keep this ticket and wait until your number is called. Thank you."),
        "language": str(get_locale() or "en"),
    }


def bridge_settings(device: KioskDevice) -> dict:
    """Where the device's print bridge listens (from its heartbeat), for the kiosk page."""
    state = device.printer_state or {}
    port = state.get("bridge_port")
    printing = isinstance(port, int) and state.get("state") != "none"
    return {
        "url": f"{BRIDGE_HOST}:{port}/print" if printing else None,
        "auto_print": bool(state.get("auto_print", True)) and printing,
    }
