"""Calls from the kiosk to the queue server: pairing and heartbeats (JSON over HTTP(S), stdlib only)."""
import json
import urllib.error
import urllib.parse
import urllib.request


class ServerError(Exception):
    """The server answered with an error (`status` set) or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


def normalise_url(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a server address: {url!r} (e.g. https://queue.example.com)")
    return url


def origin(url: str) -> str:
    """scheme://host[:port] as a browser writes it in the Origin header."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def post_json(url: str, body: dict, token: str | None = None, timeout: float = 10) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              "User-Agent": "queue-kiosk"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read().decode("utf-8")).get("error", {})
        except (ValueError, AttributeError):
            detail = {}
        raise ServerError(detail.get("message") or f"HTTP {error.code}", error.code, detail.get("code")) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ServerError(f"cannot reach {url}: {reason}") from None


def pair(server_url: str, code: str, timeout: float = 10) -> dict:
    return post_json(server_url + "/api/v1/kiosk/pair", {"code": code}, timeout=timeout)


def heartbeat(server_url: str, token: str, printer: dict, bridge_port: int | None, auto_print: bool,
              timeout: float = 10) -> dict:
    body = {"printer": {"state": printer["state"], "detail": printer.get("detail", "")[:200]},
            "bridge_port": bridge_port, "auto_print": auto_print}
    return post_json(server_url + "/api/v1/kiosk/heartbeat", body, token=token, timeout=timeout)
