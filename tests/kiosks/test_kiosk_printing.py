"""Ticket printing (kiosk/printing.py) and the loopback print bridge (kiosk/bridge.py).

The printers are real python-escpos printers: a file printer whose bytes are read back, and a
network printer talking to an ESC/POS-speaking TCP server on loopback that answers status
requests (DLE EOT) like a printer with or without paper.
"""
import os
import re
import socket
import threading

import pytest
import requests
from helpers import ESC, GS, URL, assert_ticket_bytes

from kiosk.bridge import Bridge, KioskState
from kiosk.printing import Printer, PrinterError, Ticket, find_cjk_font

ENGLISH = {
    "branch": "Demo Branch", "caption": "Your number", "label": "A001", "service": "Accounts and deposits",
    "time": "2026-11-27 10:05", "lines": ["People ahead of you: 3", "Estimated wait: About 12 min (8-20)"],
    "track_url": URL, "qr_hint": "Scan to follow your turn on your phone", "footer": "Thank you.", "language": "en",
}
CHINESE = {
    **ENGLISH, "branch": "示範分行", "caption": "您的號碼", "service": "存款與開戶",
    "lines": ["您前面還有 3 人", "預計等候：約 12 分鐘（8-20）"], "qr_hint": "掃描以手機查看叫號進度",
    "footer": "請保留此號碼牌，謝謝。", "language": "zh_Hant",
}


def cjk_font() -> str:
    path = find_cjk_font()
    if path is None:
        reason = "no CJK font (apt-get install fonts-noto-cjk)"
        if os.environ.get("QUEUE_APP_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; QUEUE_APP_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(reason)
    return path


def raster_images(data: bytes) -> list[tuple[int, int, bytes]]:
    """(width in bytes, height, bits) of every GS v 0 raster image in the printer's bytes."""
    images = []
    for match in re.finditer(rb"\x1dv0(.)(..)(..)", data, re.S):
        width = int.from_bytes(match.group(2), "little")
        height = int.from_bytes(match.group(3), "little")
        start = match.end()
        images.append((width, height, data[start:start + width * height]))
    return images


def test_a_ticket_on_a_file_printer_has_the_label_the_qr_code_and_the_cut(tmp_path):
    path = tmp_path / "printer.bin"
    printer = Printer({"type": "file", "path": str(path)})
    assert printer.state() == {"state": "ok", "detail": ""}
    printer.print_ticket(Ticket.from_payload(ENGLISH))
    data = path.read_bytes()
    assert data.startswith(ESC + b"@")  # initialised
    assert_ticket_bytes(data)
    for text in ("Demo Branch", "Accounts and deposits", "2026-11-27 10:05", "People ahead of you: 3",
                 "Estimated wait: About 12 min (8-20)", "Thank you."):
        assert text.encode() + b"\n" in data
    assert raster_images(data) == []  # all ASCII: text, no pictures

    printer.print_ticket(Ticket.from_payload({**ENGLISH, "label": "B002"}))  # the file collects tickets
    assert data in path.read_bytes() and b"B002\n" in path.read_bytes()


def test_chinese_lines_are_printed_as_images_not_as_encoded_text(tmp_path):
    font = cjk_font()
    path = tmp_path / "printer.bin"
    Printer({"type": "file", "path": str(path), "font": font}).print_ticket(Ticket.from_payload(CHINESE))
    data = path.read_bytes()
    assert_ticket_bytes(data)
    chinese = [CHINESE[k] for k in ("branch", "caption", "service", "qr_hint", "footer")] + CHINESE["lines"]
    for text in chinese:
        for encoding in ("utf-8", "big5", "gb18030"):
            assert text.encode(encoding, errors="ignore") not in data
    images = raster_images(data)
    assert len(images) == len(chinese)
    for width, height, bits in images:
        assert width == 512 // 8 and height > 20 and len(bits) == width * height
        assert any(bits), "an image with no ink"
    assert b"2026-11-27 10:05\n" in data  # ASCII stays text


def test_a_missing_printer_device_is_offline_and_refuses_the_job(tmp_path):
    printer = Printer({"type": "file", "path": str(tmp_path / "no-such-dir" / "lp0")})
    assert printer.state()["state"] == "offline"
    with pytest.raises(PrinterError) as refused:
        printer.print_ticket(Ticket.from_payload(ENGLISH))
    assert refused.value.state == "offline"
    assert Printer({"type": "none"}).state() == {"state": "none", "detail": ""}


def test_malformed_tickets_are_refused_before_printing():
    for bad in ({}, {"label": "A1"}, {**ENGLISH, "track_url": "javascript:alert(1)"}, {**ENGLISH, "label": "X" * 40},
                {**ENGLISH, "lines": "not a list"}, []):
        with pytest.raises(ValueError):
            Ticket.from_payload(bad)


class FakeNetworkPrinter:
    """An ESC/POS printer on a loopback TCP port: keeps what it receives, answers DLE EOT 1 and 4."""

    ONLINE, OFFLINE = 0x12, 0x1A
    PAPER_OK, PAPER_LOW, PAPER_OUT = 0x12, 0x1E, 0x72

    def __init__(self):
        self.online = self.ONLINE
        self.paper = self.PAPER_OK
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection):
        with connection:
            while True:
                try:
                    chunk = connection.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                if chunk == b"\x10\x04\x01":
                    connection.sendall(bytes([self.online]))
                elif chunk == b"\x10\x04\x04":
                    connection.sendall(bytes([self.paper]))
                else:
                    self.received.extend(chunk)

    def close(self):
        self._listener.close()


@pytest.fixture
def network_printer():
    fake = FakeNetworkPrinter()
    yield fake
    fake.close()


def test_a_network_printer_reports_paper_and_prints_only_with_paper(network_printer):
    printer = Printer({"type": "network", "host": "127.0.0.1", "port": network_printer.port, "timeout": 2})
    assert printer.state()["state"] == "ok"
    network_printer.paper = FakeNetworkPrinter.PAPER_LOW
    assert printer.state()["state"] == "paper_low"
    network_printer.paper = FakeNetworkPrinter.PAPER_OUT
    assert printer.state()["state"] == "paper_out"
    with pytest.raises(PrinterError) as refused:
        printer.print_ticket(Ticket.from_payload(ENGLISH))
    assert refused.value.state == "paper_out" and bytes(network_printer.received) == b""

    network_printer.paper = FakeNetworkPrinter.PAPER_OK
    network_printer.online = FakeNetworkPrinter.OFFLINE  # cover open
    assert printer.state()["state"] == "offline"
    network_printer.online = FakeNetworkPrinter.ONLINE
    printer.print_ticket(Ticket.from_payload(ENGLISH))
    deadline = threading.Event()
    for _ in range(50):
        if bytes(network_printer.received).endswith(GS + b"V\x00"):
            break
        deadline.wait(0.05)
    assert_ticket_bytes(bytes(network_printer.received))


def test_a_network_printer_nobody_answers_is_offline():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    printer = Printer({"type": "network", "host": "127.0.0.1", "port": port, "timeout": 2})
    assert printer.state()["state"] == "offline"


@pytest.fixture
def bridge(tmp_path):
    path = tmp_path / "printer.bin"
    state = KioskState(texts={"out_of_order": "暫停服務", "out_of_order_text": "請洽服務人員", "connecting": "連線恢復後自動返回"})
    running = Bridge(Printer({"type": "file", "path": str(path)}), state, "http://kiosk.test", "http://kiosk.test",
                     "http://kiosk.test/kiosk/demo?device=TOKEN", port=0, language="zh_Hant").start()
    running.path = path
    yield running
    running.stop()


def test_the_bridge_prints_what_the_kiosk_page_posts(bridge, client, api):
    # The payload exactly as the server hands it to the kiosk page.
    kiosk = client.application.test_client()
    kiosk.get(f"/kiosk/demo?device={api.kiosk_token}")
    csrf = re.search(rb'name="csrf-token" content="([^"]+)"', kiosk.get("/kiosk/demo").data).group(1).decode()
    issued = kiosk.post("/kiosk/demo/tickets", json={"service": "A"}, headers={"X-CSRFToken": csrf}).json

    answer = requests.post(f"{bridge.url}/print", json=issued["print"], headers={"Origin": "http://kiosk.test"}, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "printer": {"state": "ok", "detail": ""}}
    assert answer.headers["Access-Control-Allow-Origin"] == "http://kiosk.test"
    assert_ticket_bytes(bridge.path.read_bytes(), label=issued["label"], url=issued["track_url"])
    assert bridge.state.printer["state"] == "ok"


def test_the_bridge_answers_only_the_servers_kiosk_page(bridge):
    url = f"{bridge.url}/print"
    # Chromium asks first (CORS and Private Network Access preflight).
    preflight = requests.options(url, headers={"Origin": "http://kiosk.test", "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Private-Network": "true"}, timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Private-Network"] == "true"
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://kiosk.test"
    assert requests.options(url, headers={"Origin": "http://evil.test"}, timeout=10).status_code == 403

    assert requests.post(url, json=ENGLISH, headers={"Origin": "http://evil.test"}, timeout=10).status_code == 403
    assert requests.post(url, json=ENGLISH, timeout=10).status_code == 403  # no Origin: not a kiosk page
    plain = requests.post(url, data='{"label": "A001"}', headers={"Origin": "http://kiosk.test",
                                                                  "Content-Type": "text/plain"}, timeout=10)
    assert plain.status_code == 415  # a form or a no-preflight request cannot print
    rebound = requests.post(url, json=ENGLISH, headers={"Origin": "http://kiosk.test", "Host": "evil.test"}, timeout=10)
    assert rebound.status_code == 403  # DNS rebinding
    bad = requests.post(url, json={"label": "A001"}, headers={"Origin": "http://kiosk.test"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_ticket"
    assert not bridge.path.exists()  # nothing was printed


def test_the_bridge_reports_a_printer_without_paper(tmp_path, network_printer):
    network_printer.paper = FakeNetworkPrinter.PAPER_OUT
    state = KioskState()
    printer = Printer({"type": "network", "host": "127.0.0.1", "port": network_printer.port, "timeout": 2})
    running = Bridge(printer, state, "http://kiosk.test", "http://kiosk.test", "http://kiosk.test/kiosk/demo?device=T",
                     port=0).start()
    try:
        answer = requests.post(f"{running.url}/print", json=ENGLISH, headers={"Origin": "http://kiosk.test"}, timeout=10)
        assert answer.status_code == 503 and answer.json()["printer"]["state"] == "paper_out"
        assert state.printer["state"] == "paper_out" and state.wake.is_set()  # a heartbeat goes out now
        assert requests.get(f"{running.url}/status", timeout=10).json()["printer"]["state"] == "paper_out"
    finally:
        running.stop()


def test_the_start_page_waits_for_the_server_then_opens_the_kiosk_page(bridge):
    page = requests.get(f"{bridge.url}/", timeout=10)
    assert page.status_code == 200 and "暫停服務" in page.text and 'lang="zh-Hant"' in page.text
    assert '<script defer src="/start.js"></script>' in page.text and "<script>" not in page.text
    assert requests.get(f"{bridge.url}/start.js", timeout=10).status_code == 200
    assert requests.get(f"{bridge.url}/status", timeout=10).json()["server"] == "unknown"
    waiting = requests.get(f"{bridge.url}/go", allow_redirects=False, timeout=10)
    assert waiting.status_code == 302 and waiting.headers["Location"] == "/"  # not a browser error page
    bridge.state.update(server_ok=True)
    going = requests.get(f"{bridge.url}/go", allow_redirects=False, timeout=10)
    assert going.headers["Location"] == "http://kiosk.test/kiosk/demo?device=TOKEN"
