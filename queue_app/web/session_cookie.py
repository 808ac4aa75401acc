"""Flask's signed-cookie session, opened without its signing serializer when the request has no
session cookie: API calls with a bearer token, kiosks, public pages.

Flask builds the serializer (a key derivation) before it looks for the cookie, on every request:
about 45 Python calls, 1 % of issuing a ticket. A request with the cookie goes through Flask's code
unchanged, and so does saving (Flask-Login reads the session after every request).
"""
from flask.sessions import SecureCookieSessionInterface


class CookieFirstSessions(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask opens for a request without the cookie
        return super().open_session(app, request)
