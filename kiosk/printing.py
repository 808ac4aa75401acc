"""Tickets on an ESC/POS printer through python-escpos: USB, network, serial, a file, or a dummy.

The server writes every text of the ticket in the kiosk's language (the `print` object of its
ticket answer); this module only lays it out: branch name, a caption, the large label, the
service, the local time, people ahead and the estimate, a QR code of the tracking link, a short
footer, then the cut. ASCII lines go to the printer as text. Any other line (Chinese) is drawn
with Pillow in a CJK font and sent as a raster image: python-escpos encodes Chinese only as
GB18030, and Big5 printers in Taiwan and Hong Kong would print it as garbage.
"""
import logging
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass

from escpos.constants import (
    QR_ECLEVEL_M,
    RT_MASK_LOWPAPER,
    RT_MASK_NOPAPER,
    RT_MASK_ONLINE,
    RT_STATUS_ONLINE,
    RT_STATUS_PAPER,
)
from escpos.printer import Dummy, File, Network
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

PRINTER_TYPES = ("usb", "network", "serial", "file", "dummy", "none")
# Where Debian and friends put CJK fonts (fonts-noto-cjk first); `fc-match` is asked last.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
# Faces inside NotoSansCJK*.ttc: 2 is Simplified (SC), 3 Traditional (TC).
_NOTO_FACE = {"zh_Hans": 2, "zh_Hant": 3}
TEXT_PX = 26      # body lines drawn as images, in printer dots (about the printer's own font B/A)
LARGE_PX = 40     # branch name and service


class PrinterError(Exception):
    """The printer could not print; `state` is what the heartbeat reports (offline, paper_out...)."""

    def __init__(self, state: str, detail: str):
        super().__init__(detail)
        self.state = state
        self.detail = detail


class AppendFile(File):
    """A file printer that appends (python-escpos truncates): a file collects every ticket's bytes."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        try:
            self.device = open(self.devfile, "ab")
        except OSError as error:
            self.device = None
            if raise_not_found:
                raise PrinterError("offline", f"cannot open {self.devfile}: {error.strerror}") from None


class NetworkPrinter(Network):
    """python-escpos's network printer, closing its socket when the connection fails (it leaks it)."""

    def open(self, raise_not_found: bool = True) -> None:
        if self._device:
            self.close()
        try:
            self.device = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as error:
            self.device = None
            raise PrinterError("offline", f"no answer from {self.host}:{self.port}: {error}") from None


@dataclass
class Ticket:
    """The `print` object the server sends with a ticket, checked (it arrives through the browser)."""

    label: str
    track_url: str
    branch: str = ""
    caption: str = ""
    service: str = ""
    time: str = ""
    lines: tuple[str, ...] = ()
    qr_hint: str = ""
    footer: str = ""
    language: str = "en"

    @classmethod
    def from_payload(cls, payload) -> "Ticket":
        if not isinstance(payload, dict):
            raise ValueError("the ticket must be a JSON object")

        def text(name, limit=200, required=False):
            value = payload.get(name, "")
            if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
                raise ValueError(f"{name}: {'required ' if required else ''}text of at most {limit} characters")
            return value.strip()

        lines = payload.get("lines", [])
        if not isinstance(lines, list) or len(lines) > 8 or not all(isinstance(x, str) and len(x) <= 200 for x in lines):
            raise ValueError("lines: at most 8 texts")
        track_url = text("track_url", 500, required=True)
        if not track_url.startswith(("https://", "http://")):
            raise ValueError("track_url: an http(s) link")
        return cls(label=text("label", 16, required=True), track_url=track_url, branch=text("branch"),
                   caption=text("caption"), service=text("service"), time=text("time", 40),
                   lines=tuple(x.strip() for x in lines), qr_hint=text("qr_hint"), footer=text("footer", 300),
                   language=text("language", 16) or "en")


def find_cjk_font(configured: str = "") -> str | None:
    if configured:
        return configured if os.path.isfile(configured) else None
    for path in FONT_CANDIDATES:
        if os.path.isfile(path):
            return path
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh-tw"], capture_output=True, text=True,
                                   timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if found and os.path.isfile(found) and found.lower().endswith((".ttc", ".ttf", ".otf")):
            return found
    return None


class TextImages:
    """Draws lines the printer cannot encode (Chinese) as black-on-white images `width` dots wide."""

    def __init__(self, font_path: str | None, width: int, language: str):
        self.font_path = font_path
        self.width = width
        self.index = _NOTO_FACE.get(language, 3) if font_path and "NotoSansCJK" in os.path.basename(font_path) else 0
        self._fonts = {}

    def font(self, px: int):
        if px not in self._fonts:
            if self.font_path is None:
                raise PrinterError("error", "no CJK font found: install fonts-noto-cjk or set [printer] font")
            self._fonts[px] = ImageFont.truetype(self.font_path, px, index=self.index)
        return self._fonts[px]

    def _wrap(self, text: str, font) -> list[str]:
        """Break where the line is full: between words for spaced text, between characters for Chinese."""
        lines, current = [], ""
        for char in text:
            if font.getlength(current + char) <= self.width - 8 or not current:
                current += char
                continue
            cut = current.rfind(" ")
            if cut > 0 and char != " ":
                lines.append(current[:cut])
                current = current[cut + 1:] + char
            else:
                lines.append(current.rstrip())
                current = char.lstrip()
        if current:
            lines.append(current)
        return lines

    def render(self, text: str, px: int) -> Image.Image:
        font = self.font(px)
        rows = self._wrap(text, font)
        ascent, descent = font.getmetrics()
        row_height = ascent + descent + px // 6
        image = Image.new("1", (self.width, row_height * len(rows) + 4), 1)
        draw = ImageDraw.Draw(image)
        for n, row in enumerate(rows):
            x = max(0, (self.width - int(font.getlength(row))) // 2)
            draw.text((x, 2 + n * row_height), row, font=font, fill=0)
        return image


def render_ticket(printer, ticket: Ticket, width: int = 512, font_path: str | None = None, qr: str = "native") -> None:
    """Send one ticket to an open python-escpos printer, cut included."""
    images = TextImages(font_path, width, ticket.language)

    def line(text: str, px: int = TEXT_PX, bold: bool = False, double: bool = False):
        if not text:
            return
        if text.isascii():
            printer.set(align="center", bold=bold, double_height=double, double_width=double, normal_textsize=not double)
            printer.textln(text)
        else:
            printer.image(images.render(text, px), impl="bitImageRaster")

    printer.hw("INIT")
    printer.set(align="center")
    line(ticket.branch, LARGE_PX, bold=True, double=True)
    printer.ln()
    line(ticket.caption)
    # The number is what people compare with the display: as large as the printer prints text.
    size = 4 if len(ticket.label) <= 8 else 2
    printer.set(align="center", bold=True, custom_size=True, width=size, height=size)
    printer.textln(ticket.label)
    printer.set(align="center", bold=False, normal_textsize=True)
    line(ticket.service, LARGE_PX, bold=True)
    line(ticket.time)
    printer.ln()
    for text in ticket.lines:
        line(text)
    printer.set(align="center", bold=False, normal_textsize=True)
    if qr == "image":
        printer.qr(ticket.track_url, ec=QR_ECLEVEL_M, size=6, native=False, center=True)
    else:
        printer.qr(ticket.track_url, ec=QR_ECLEVEL_M, size=6, native=True)
        printer.ln()
    line(ticket.qr_hint)
    printer.ln()
    line(ticket.footer)
    printer.cut()


class Printer:
    """The configured printer, opened per job (it may have been unplugged since), one job at a time."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.kind = settings.get("type", "none")
        if self.kind not in PRINTER_TYPES:
            raise ValueError(f"[printer] type must be one of {', '.join(PRINTER_TYPES)}, not {self.kind!r}")
        self.width = int(settings.get("width", 512))
        self.qr = settings.get("qr", "native")
        self.auto_print = bool(settings.get("auto_print", True))
        self.font_path = find_cjk_font(settings.get("font", ""))
        self._lock = threading.Lock()
        self.last_output = b""  # what a dummy printer received last (for `queue-kiosk test-print`)

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def _open(self):
        s = self.settings
        profile = s.get("profile") or "default"
        timeout = float(s.get("timeout", 5))
        if self.kind == "file":
            if not s.get("path"):
                raise PrinterError("error", "[printer] path is not set")
            device = AppendFile(devfile=s["path"], profile=profile)
        elif self.kind == "dummy":
            device = Dummy(profile=profile)
        elif self.kind == "network":
            if not s.get("host"):
                raise PrinterError("error", "[printer] host is not set")
            device = NetworkPrinter(host=s["host"], port=int(s.get("port", 9100)), timeout=timeout, profile=profile)
        elif self.kind == "usb":
            from escpos.printer import Usb

            device = Usb(idVendor=int(s.get("vendor_id", 0)) or None, idProduct=int(s.get("product_id", 0)) or None,
                         timeout=int(timeout * 1000), in_ep=int(s.get("in_ep", 0x82)), out_ep=int(s.get("out_ep", 0x01)),
                         profile=profile)
        elif self.kind == "serial":
            from escpos.printer import Serial

            device = Serial(devfile=s.get("device", "/dev/ttyUSB0"), baudrate=int(s.get("baudrate", 9600)),
                            timeout=timeout, profile=profile)
        else:
            raise PrinterError("none", "no printer configured")
        media = device.profile.profile_data.setdefault("media", {}).setdefault("width", {})
        if media.get("pixels") in (None, "Unknown"):
            media["pixels"] = self.width  # lets python-escpos centre images (and stops it complaining)
        try:
            device.open()
        except PrinterError:
            raise
        except Exception as error:  # DeviceNotFoundError, USBNotFoundError, OSError...
            raise PrinterError("offline", f"{type(error).__name__}: {error}".strip()) from None
        return device

    def _query(self, device) -> dict:
        """Ask the printer (DLE EOT) whether it is online and has paper; silence is taken as ready."""
        if self.kind in ("file", "dummy"):
            return {"state": "ok", "detail": ""}
        try:
            online = device.query_status(RT_STATUS_ONLINE)
            paper = device.query_status(RT_STATUS_PAPER)
        except Exception as error:  # a read timeout: many printers do not answer status requests
            return {"state": "ok", "detail": f"no status answer ({type(error).__name__})"}
        if online and online[0] & RT_MASK_ONLINE:
            return {"state": "offline", "detail": "the printer reports it is offline (cover open?)"}
        if paper:
            if paper[0] & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
                return {"state": "paper_out", "detail": "no paper"}
            if paper[0] & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER:
                return {"state": "paper_low", "detail": "paper near its end"}
        return {"state": "ok", "detail": ""}

    def state(self) -> dict:
        """For the heartbeat: ok, paper_low, paper_out, offline, error or none."""
        if not self.enabled:
            return {"state": "none", "detail": ""}
        with self._lock:
            try:
                device = self._open()
            except PrinterError as error:
                return {"state": error.state, "detail": error.detail[:200]}
            try:
                return self._query(device)
            finally:
                device.close()

    def print_ticket(self, ticket: Ticket) -> dict:
        """Print, or raise PrinterError (without printing when the printer says it has no paper)."""
        if not self.enabled:
            raise PrinterError("none", "no printer configured")
        with self._lock:
            device = self._open()
            try:
                status = self._query(device)
                if status["state"] in ("paper_out", "offline"):
                    raise PrinterError(status["state"], status["detail"])
                try:
                    render_ticket(device, ticket, width=self.width, font_path=self.font_path, qr=self.qr)
                except PrinterError:
                    raise
                except Exception as error:
                    raise PrinterError("error", f"{type(error).__name__}: {error}"[:200]) from None
                if isinstance(device, Dummy):
                    self.last_output = device.output
                return status
            finally:
                device.close()
