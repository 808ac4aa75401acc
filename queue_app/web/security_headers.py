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
_PAGE_POLICY = PAGE_POLICY.format(frame_ancestors="'none'")
_FRAMED_POLICY = PAGE_POLICY.format(frame_ancestors="*")
_KIOSK_POLICY = _PAGE_POLICY.replace("connect-src 'self'", f"connect-src 'self' {KIOSK_BRIDGE_SOURCES}")


def _policy_headers(path: str) -> tuple[tuple[str, str], ...]:
    if path.startswith("/api/v1/docs"):
        return ("Content-Security-Policy", DOCS_POLICY), ("X-Frame-Options", "DENY")
    if path.startswith(("/display/", "/embed/")):
        return (("Content-Security-Policy", _FRAMED_POLICY),)
    if path.startswith("/kiosk/"):
        return ("Content-Security-Policy", _KIOSK_POLICY), ("X-Frame-Options", "DENY")
    return ("Content-Security-Policy", _PAGE_POLICY), ("X-Frame-Options", "DENY")


def _add_headers(response):
    headers = response.headers
    # Added where the view did not set its own. One pass over the names: each lookup of werkzeug's
    # Headers lower-cases every name, which was a tenth of a small request's Python calls.
    present = {name.lower() for name in headers.keys()}
    wanted = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin"),
              *_policy_headers(request.path)]
    if current_app.config.get("QUEUE_APP_ENV") == "production":
        wanted.append(("Strict-Transport-Security", HSTS))
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def init_app(app) -> None:
    app.after_request(_add_headers)
