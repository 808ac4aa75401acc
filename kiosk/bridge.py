"""The loopback print bridge, and the start page the kiosk browser opens first.

Listens on 127.0.0.1 only:
- `POST /print` takes the `print` object of a ticket (JSON) from the kiosk page and prints it:
  200 `{"ok": true, "printer": {...}}`, 503 `{"ok": false, "printer": {"state": "paper_out", ...}}`
  when the printer cannot (the page then tells the visitor to use the QR code on screen), 400 for
  a malformed ticket. Only the queue server's origin may call it (CORS, with Chromium's Private
  Network Access preflight), only with a JSON body (so a plain form cannot post), and only under
  a loopback Host name (no DNS rebinding).
- `GET /status`: whether the server answered the last heartbeat, and the printer's state.
- `GET /`: the start page: an out-of-order screen in the branch's language that moves on to the
  kiosk page (`/go`, which adds the device token) as soon as the server answers, so the kiosk
  never shows the browser's own error page, even when it boots while the network is down.
"""
import html
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kiosk.printing import Printer, PrinterError, Ticket

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


class KioskState:
    """What the heartbeat learnt, shared with the bridge (thread-safe)."""

    def __init__(self, texts: dict | None = None):
        self._lock = threading.Lock()
        self.server_ok: bool | None = None  # None: not asked yet
        self.server_message = ""
        self.printer = {"state": "none", "detail": ""}
        self.texts = dict(texts or {})
        self.wake = threading.Event()  # a print failed or recovered: send a heartbeat now

    def update(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)

    def snapshot(self) -> dict:
        with self._lock:
            return {"server": {None: "unknown", True: "ok", False: "unreachable"}[self.server_ok],
                    "message": self.server_message, "printer": dict(self.printer)}


START_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  html, body {{ margin: 0; height: 100%; background: #1b1f24; color: #fff; font-family: system-ui, sans-serif; }}
  main {{ display: flex; flex-direction: column; align-items: center; justify-content: center; height: 100%;
          text-align: center; padding: 0 8vw; box-sizing: border-box; }}
  .icon {{ font-size: 6rem; font-weight: 800; border: .6rem solid #f5a623; color: #f5a623; border-radius: 50%;
           width: 9rem; height: 9rem; line-height: 9rem; margin: 0 0 2rem; }}
  h1 {{ font-size: 3.5rem; margin: 0 0 1rem; }}
  p {{ font-size: 1.8rem; margin: .4rem 0; }}
  .hint {{ color: #b8c3d3; font-size: 1.3rem; }}
</style>
<script defer src="/start.js"></script>
</head>
<body>
<main role="alert">
  <p class="icon" aria-hidden="true">!</p>
  <h1>{title}</h1>
  <p>{text}</p>
  <p class="hint">{hint}</p>
</main>
</body>
</html>
"""

# Waits for the server, then opens the kiosk page; the bridge serves it (no inline script).
START_JS = """(function () {
  "use strict";
  function check() {
    fetch("/status", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.server === "ok") window.location.replace("/go");
      else setTimeout(check, 3000);
    }, function () { setTimeout(check, 3000); });
  }
  check();
})();
"""

DEFAULT_TEXTS = {
    "out_of_order": "Out of order",
    "out_of_order_text": "Sorry, this kiosk cannot issue tickets right now. Please ask a member of staff.",
    "connecting": "This screen returns by itself as soon as the connection is back.",
}


class Bridge:
    def __init__(self, printer: Printer, state: KioskState, server_url: str, allowed_origin: str, kiosk_url: str,
                 port: int = 8765, language: str = "en"):
        self.printer = printer
        self.state = state
        self.server_url = server_url
        self.allowed_origin = allowed_origin
        self.kiosk_url = kiosk_url  # the kiosk page with ?device=TOKEN
        self.language = language
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Bridge":
        self._thread = threading.Thread(target=self._server.serve_forever, name="print-bridge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def print_payload(self, payload) -> tuple[int, dict]:
        try:
            ticket = Ticket.from_payload(payload)
        except ValueError as error:
            return 400, {"ok": False, "error": {"code": "bad_ticket", "message": str(error)}}
        before = self.state.printer.get("state")
        try:
            status = self.printer.print_ticket(ticket)
        except PrinterError as error:
            printer = {"state": error.state, "detail": error.detail[:200]}
            self.state.update(printer=printer)
            self.state.wake.set()  # tell the manager page now, not at the next heartbeat
            log.warning("ticket %s not printed: %s (%s)", ticket.label, error.state, error.detail)
            return 503, {"ok": False, "printer": printer}
        self.state.update(printer=status)
        if before != status["state"]:
            self.state.wake.set()
        log.info("printed ticket %s", ticket.label)
        return 200, {"ok": True, "printer": status}

    def start_page(self) -> str:
        texts = {**DEFAULT_TEXTS, **{k: v for k, v in self.state.texts.items() if isinstance(v, str) and v}}
        return START_PAGE.format(lang=html.escape(self.language.replace("_", "-")),
                                 title=html.escape(texts["out_of_order"]), text=html.escape(texts["out_of_order_text"]),
                                 hint=html.escape(texts["connecting"]))

    def _handler_class(self):
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "queue-kiosk"
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                log.debug("bridge: " + format, *args)

            def _loopback_host(self) -> bool:
                host = (self.headers.get("Host") or "").lower()
                return host in (f"127.0.0.1:{bridge.port}", f"localhost:{bridge.port}")

            def _cors(self) -> dict:
                origin = self.headers.get("Origin")
                if origin and origin.rstrip("/").lower() == bridge.allowed_origin.lower():
                    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
                return {}

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, data: dict, headers: dict | None = None):
                self._send(status, json.dumps(data).encode("utf-8"), "application/json", headers)

            def _refuse(self, status: int, code: str, message: str):
                self._json(status, {"ok": False, "error": {"code": code, "message": message}}, self._cors())

            def do_OPTIONS(self):  # noqa: N802 - http.server's naming
                if not self._loopback_host() or not self._cors() or self.path != "/print":
                    return self._refuse(403, "origin_refused", "Only the queue server's kiosk page may print here.")
                headers = {**self._cors(), "Access-Control-Allow-Methods": "POST",
                           "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}
                if self.headers.get("Access-Control-Request-Private-Network") == "true":
                    headers["Access-Control-Allow-Private-Network"] = "true"  # Chromium: public page -> loopback
                self._send(204, b"", "text/plain", headers)

            def do_POST(self):  # noqa: N802
                if not self._loopback_host():
                    return self._refuse(403, "host_refused", "Use http://127.0.0.1.")
                if self.path != "/print":
                    return self._refuse(404, "not_found", "POST /print")
                if not self._cors():
                    return self._refuse(403, "origin_refused", "Only the queue server's kiosk page may print here.")
                if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
                    return self._refuse(415, "json_required", "Send the ticket as application/json.")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 < length <= MAX_BODY:
                    return self._refuse(413 if length > MAX_BODY else 400, "bad_length", "A ticket is 1 byte to 64 KiB.")
                try:
                    payload = json.loads(self.rfile.read(length).decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    return self._refuse(400, "malformed_json", "The body is not JSON.")
                status, answer = bridge.print_payload(payload)
                self._json(status, answer, self._cors())

            def do_GET(self):  # noqa: N802
                if not self._loopback_host():
                    return self._refuse(403, "host_refused", "Use http://127.0.0.1.")
                path = self.path.split("?")[0]
                if path == "/status":
                    return self._json(200, bridge.state.snapshot(), self._cors())
                if path == "/":
                    return self._send(200, bridge.start_page().encode("utf-8"), "text/html; charset=utf-8",
                                      {"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'",
                                       "X-Frame-Options": "DENY"})
                if path == "/start.js":
                    return self._send(200, START_JS.encode("utf-8"), "text/javascript; charset=utf-8")
                if path == "/go":
                    # Only once the server answers: a browser error page would be stuck on screen.
                    target = bridge.kiosk_url if bridge.state.server_ok else "/"
                    return self._send(302, b"", "text/plain", {"Location": target, "Referrer-Policy": "no-referrer"})
                return self._refuse(404, "not_found", "Not here.")

            do_HEAD = do_GET

        return Handler
