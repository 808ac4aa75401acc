"""A ticket's tracking link and its QR code, as inline SVG (no image files, works offline)."""
import re

import qrcode
import qrcode.constants
import qrcode.image.svg
from flask import current_app, url_for
from markupsafe import escape

from queue_app.core.models import utcnow
from queue_app.tickets import numbering, remote_rules


def tracking_url(token: str) -> str:
    """The absolute link a phone opens: it must work from outside this request (printed, scanned)."""
    return current_app.config["QUEUE_APP_BASE_URL"] + url_for("public.track", token=token)


def here_url(branch) -> str:
    """Today's "I'm here" address of a branch (remote tickets, remote_rules.here_code), for its
    kiosk's and its door's QR: absolute, it is scanned."""
    today = numbering.local_day(utcnow(), branch.zone)
    code = remote_rules.here_code(current_app.config["SECRET_KEY"], branch.id, today)
    return current_app.config["QUEUE_APP_BASE_URL"] + url_for("join.here", slug=branch.slug, code=code)


def qr_svg(data: str, title: str = "") -> str:
    """An inline <svg> of `data` that scales with CSS (no fixed size) and has an accessible name."""
    code = qrcode.QRCode(
        # Medium error correction survives a scuffed or badly printed ticket; the quiet zone of 4
        # modules is what phone cameras need to find the code on a busy background.
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    code.add_data(data)
    svg = code.make_image().to_string(encoding="unicode")
    # The factory writes a physical size (e.g. width="37mm"); drop it so the viewBox and the page's
    # CSS decide, and give the image a name for screen readers. The fixed id would repeat on a page.
    svg = re.sub(r'\s(width|height)="[^"]*"', "", svg, count=2)
    svg = svg.replace(' id="qr-path"', "")
    label = f' role="img" aria-label="{escape(title)}"' if title else ' aria-hidden="true"'
    return svg.replace("<svg", f'<svg class="qr" shape-rendering="crispEdges"{label}', 1)
