"""The kiosk's config file (TOML): the server and device token from pairing, the printer, the bridge.

Default place: $QUEUE_KIOSK_CONFIG, else $XDG_CONFIG_HOME/queue-kiosk/kiosk.toml (~/.config/...).
`pair` writes the [server] table and keeps the rest; the file holds the device token, so it is
written with mode 0600.

    [server]
    url = "https://queue.example.com"
    token = "..."                  # from pairing; the device's credential
    branch = "demo"
    device_name = "Lobby left"
    kiosk_path = "/kiosk/demo"

    [printer]
    type = "usb"                   # usb | network | serial | file | dummy | none (browser printing)
    vendor_id = 0x04b8             # usb
    product_id = 0x0202            # usb
    # host = "192.168.1.50"        # network (port = 9100)
    # device = "/dev/ttyUSB0"      # serial (baudrate = 9600)
    # path = "/dev/usb/lp0"        # file: a device node, or a file that collects the bytes (tests)
    width = 512                    # printable dots per line (80 mm paper: 512 or 576; 58 mm: 384)
    profile = "default"            # python-escpos printer profile
    font = ""                      # a CJK font for Chinese lines; empty: found on the system
    qr = "native"                  # native (the printer draws it) | image
    auto_print = true              # print each ticket as it is issued

    [bridge]
    port = 8765                    # loopback only

    [heartbeat]
    seconds = 30

    [browser]
    chromium = ""                  # empty: chromium or chromium-browser on PATH; "none": print the URL
"""
import os
import tomllib
from pathlib import Path

DEFAULTS = {
    "server": {"url": "", "token": "", "branch": "", "device_name": "", "kiosk_path": "", "texts": {}},
    "printer": {"type": "none", "width": 512, "profile": "default", "font": "", "qr": "native", "auto_print": True,
                "timeout": 5},
    "bridge": {"port": 8765},
    "heartbeat": {"seconds": 30},
    "browser": {"chromium": ""},
}


class ConfigError(Exception):
    pass


def default_path() -> Path:
    if os.environ.get("QUEUE_KIOSK_CONFIG"):
        return Path(os.environ["QUEUE_KIOSK_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "queue-kiosk" / "kiosk.toml"


def load(path: Path) -> dict:
    """The config with defaults filled in; a missing file is the defaults."""
    data = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    merged = {}
    for table, defaults in DEFAULTS.items():
        given = data.get(table, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{table}] must be a table")
        merged[table] = {**defaults, **given}
    for table, values in data.items():
        merged.setdefault(table, values)
    return merged


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            "\\\\" if ch == "\\" else '\\"' if ch == '"' else f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
            for ch in value
        )
        return f'"{escaped}"'
    raise ConfigError(f"cannot write {value!r} to the config file")


def dumps(config: dict) -> str:
    lines = ["# queue-kiosk configuration (written by `queue-kiosk pair`; edit the [printer] table by hand)"]
    for table, values in config.items():
        if not isinstance(values, dict):
            continue
        lines.append("")
        lines.append(f"[{table}]")
        nested = []
        for key, value in values.items():
            if isinstance(value, dict):
                nested.append((key, value))
            elif value is not None:
                lines.append(f"{key} = {_value(value)}")
        for key, value in nested:
            lines.append("")
            lines.append(f"[{table}.{key}]")
            lines.extend(f"{k} = {_value(v)}" for k, v in value.items() if v is not None)
    return "\n".join(lines) + "\n"


def save(path: Path, config: dict) -> None:
    """Write atomically with mode 0600: the file holds the device token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dumps(config))
    os.replace(temporary, path)
