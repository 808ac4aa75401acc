"""Security headers on every response: no inline scripts, no sniffing, no framing but the display
and the waits widget; HSTS in production."""
from flask import current_app, request

# Pages keep their JavaScript in /static/js and pass data in JSON blocks, so scripts can be
# limited to this origin. Inline style attributes stay allowed (harmless, and templates use a few).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors {frame_ancestors}"
)
# ReDoc (the API docs page) builds its page with inline code and a worker from a blob.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)


# The kiosk page posts tickets to its device's print bridge on loopback (`queue-kiosk run`).
KIOSK_BRIDGE_SOURCES = "http://127.0.0.1:*"
# Production only: browsers then use HTTPS for this host for a year (they ignore it over plain HTTP).
HSTS = "max-age=31536000; includeSubDomains"


def _add_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config.get("QUEUE_APP_ENV") == "production":
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith("/api/v1/docs"):
        headers.setdefault("Content-Security-Policy", DOCS_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    elif request.path.startswith(("/display/", "/embed/")):
        # The lobby display may be embedded in a digital-signage page, and the waits widget in a
        # bank's own branch pages (public figures only, no forms, no cookies read); nothing else
        # may be framed.
        headers.setdefault("Content-Security-Policy", PAGE_POLICY.format(frame_ancestors="*"))
    elif request.path.startswith("/kiosk/"):
        policy = PAGE_POLICY.format(frame_ancestors="'none'")
        headers.setdefault("Content-Security-Policy",
                           policy.replace("connect-src 'self'", f"connect-src 'self' {KIOSK_BRIDGE_SOURCES}"))
        headers.setdefault("X-Frame-Options", "DENY")
    else:
        headers.setdefault("Content-Security-Policy", PAGE_POLICY.format(frame_ancestors="'none'"))
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app) -> None:
    app.after_request(_add_headers)
