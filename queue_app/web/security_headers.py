"""Security headers on every response: no inline scripts, no sniffing, no framing but the display."""
from flask import request

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


def _add_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if request.path.startswith("/api/v1/docs"):
        headers.setdefault("Content-Security-Policy", DOCS_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    elif request.path.startswith("/display/"):
        # The lobby display may be embedded in a digital-signage page; nothing else may be framed.
        headers.setdefault("Content-Security-Policy", PAGE_POLICY.format(frame_ancestors="*"))
    else:
        headers.setdefault("Content-Security-Policy", PAGE_POLICY.format(frame_ancestors="'none'"))
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app) -> None:
    app.after_request(_add_headers)
