"""`queue-kiosk pair` and `run` as real processes against a real running server (`queue-app run`).

A manager creates a pairing code on the manager page over HTTP; the kiosk pairs with it, runs
with a file printer, sends heartbeats the manager page shows, opens the kiosk page through its
start page, and prints the ticket the page posts to its bridge. Stopping the server puts the
start page's out-of-order screen up; it recovers by itself.
"""
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from browser import open_page, save_screenshot
from helpers import assert_ticket_bytes
from playwright.sync_api import expect
from servers import CHROMIUM_ARGS, ROOT, AppServer, chromium_path, free_port

from kiosk import config as kiosk_config
from kiosk.cli import chromium_command

KIOSK = [sys.executable, "-m", "kiosk"]


def manager_session(base: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    signed_in = browser.post(f"{base}/login", data={"email": "manager@demo.test", "password": "demo-password",
                                                     "csrf_token": token}, timeout=10)
    assert signed_in.ok and signed_in.url.startswith(base)
    return browser


def pairing_code(manager: requests.Session, base: str, name: str) -> str:
    page = manager.get(f"{base}/manage/branches/demo/kiosks", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    created = manager.post(f"{base}/manage/branches/demo/kiosks", data={"name": name, "csrf_token": token}, timeout=10)
    return re.search(r'id="pairing-code">([^<]+)<', created.text).group(1)


def device_row(manager: requests.Session, base: str, name: str) -> str:
    page = manager.get(f"{base}/manage/branches/demo/kiosks", timeout=10).text
    rows = re.findall(r"<tr data-device=\"\d+\">(.*?)</tr>", page, re.S)
    return next(row for row in rows if f"<td>{name}</td>" in row)


def kiosk_cli(config: Path, *args, **kwargs):
    return subprocess.run([*KIOSK, "--config", str(config), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, **kwargs)


def wait_until(check, timeout=20, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {message}")


def bridge_status(bridge: str):
    try:
        return requests.get(f"{bridge}/status", timeout=2).json()
    except requests.ConnectionError:
        return None


class KioskProcess:
    def __init__(self, config: Path, port: int, log: Path, *extra):
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen([*KIOSK, "--config", str(config), "run", "--port", str(port), *extra],
                                            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is not None or bridge_status(self.url), message="the print bridge")
        assert self.process.poll() is None, log.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def paired_config(server, tmp_path, name: str, printer: dict) -> Path:
    config_path = tmp_path / "kiosk" / "kiosk.toml"
    code = pairing_code(manager_session(server.base), server.base, name)
    paired = kiosk_cli(config_path, "pair", code, "--server", server.base + "/")
    assert paired.returncode == 0, paired.stderr
    config = kiosk_config.load(config_path)
    config["printer"] = printer
    config["heartbeat"] = {"seconds": 1}
    kiosk_config.save(config_path, config)
    return config_path


def test_pair_stores_a_device_token_and_the_code_works_once(server, tmp_path):
    manager = manager_session(server.base)
    code = pairing_code(manager, server.base, "Lobby left")
    config_path = tmp_path / "conf" / "kiosk.toml"

    paired = kiosk_cli(config_path, "pair", code, "--server", server.base)
    assert paired.returncode == 0, paired.stderr
    assert 'Paired as "Lobby left" of Demo Branch (demo)' in paired.stdout
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600  # it holds the device token
    stored = tomllib.loads(config_path.read_text())["server"]
    assert stored["url"] == server.base and stored["branch"] == "demo" and stored["kiosk_path"] == "/kiosk/demo"
    assert stored["texts"]["out_of_order"] == "Out of order"
    # The stored token is a working device token.
    kiosk = requests.Session()
    assert kiosk.get(f"{server.base}/kiosk/demo?device={stored['token']}", timeout=10).status_code == 200
    assert "Not heard from yet" in device_row(manager, server.base, "Lobby left")

    again = kiosk_cli(tmp_path / "other.toml", "pair", code, "--server", server.base)
    assert again.returncode != 0 and "used already" in again.stderr
    assert not (tmp_path / "other.toml").exists()
    wrong = kiosk_cli(tmp_path / "other.toml", "pair", "ABCD-EFGH-JK", "--server", server.base)
    assert wrong.returncode != 0 and "No such pairing code" in wrong.stderr
    down = kiosk_cli(tmp_path / "other.toml", "pair", code, "--server", f"http://127.0.0.1:{free_port()}")
    assert down.returncode != 0 and "cannot reach" in down.stderr
    assert kiosk_cli(tmp_path / "other.toml", "run", "--no-browser").returncode != 0  # not paired: refuses


def test_run_heartbeats_opens_the_kiosk_and_prints_what_the_page_posts(server, tmp_path):
    printed = tmp_path / "lp" / "printer.bin"  # stands for a printer's device node
    printed.parent.mkdir()
    config_path = paired_config(server, tmp_path, "Lobby left", {"type": "file", "path": str(printed)})
    kiosk = KioskProcess(config_path, free_port(), tmp_path / "kiosk.log", "--no-browser")
    try:
        assert wait_until(lambda: (bridge_status(kiosk.url) or {}).get("server") == "ok", message="a heartbeat")
        manager = manager_session(server.base)
        row = device_row(manager, server.base, "Lobby left")
        assert "Online" in row and "Printer ready" in row

        # The browser's way in: the start page's /go adds the device token, the server drops it again.
        browser = requests.Session()
        page = browser.get(f"{kiosk.url}/go", timeout=10)
        assert page.status_code == 200 and page.url == f"{server.base}/kiosk/demo"
        assert browser.get(f"{server.base}/kiosk/demo/ping", timeout=10).json()["printer"] == {
            "url": f"{kiosk.url}/print", "auto_print": True}
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        ticket = browser.post(f"{server.base}/kiosk/demo/tickets", json={"service": "A"},
                              headers={"X-CSRFToken": csrf}, timeout=10).json()
        answer = requests.post(f"{kiosk.url}/print", json=ticket["print"], headers={"Origin": server.base}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert_ticket_bytes(printed.read_bytes(), label=ticket["label"], url=ticket["track_url"])

        # The printer goes away (its device node vanishes): the page hears so, and so does the manager page.
        shutil.rmtree(printed.parent)
        failed = requests.post(f"{kiosk.url}/print", json=ticket["print"], headers={"Origin": server.base}, timeout=10)
        assert failed.status_code == 503 and failed.json()["printer"]["state"] == "offline"
        wait_until(lambda: "Printer offline" in device_row(manager, server.base, "Lobby left"), message="offline")

        # The server stops: the start page shows out of order and does not send the browser on.
        server.stop()
        wait_until(lambda: (bridge_status(kiosk.url) or {}).get("server") == "unreachable", message="unreachable")
        start = requests.get(f"{kiosk.url}/go", timeout=10)
        assert start.url == f"{kiosk.url}/" and "Out of order" in start.text
        server.start()
        wait_until(lambda: (bridge_status(kiosk.url) or {}).get("server") == "ok", message="recovery")
    finally:
        assert kiosk.stop() == 0, kiosk.log.read_text()
    assert "Kiosk stopped." in kiosk.log.read_text()


def test_run_starts_chromium_in_kiosk_mode_on_the_start_page(server, tmp_path):
    # No display here for a real full-screen Chromium: a stand-in records how it was started.
    record = tmp_path / "chromium-args.txt"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\nsleep 60\n")
    fake.chmod(0o755)
    config_path = paired_config(server, tmp_path, "Lobby right", {"type": "none"})
    config = kiosk_config.load(config_path)
    config["browser"] = {"chromium": str(fake)}
    kiosk_config.save(config_path, config)
    port = free_port()
    kiosk = KioskProcess(config_path, port, tmp_path / "kiosk.log")
    try:
        args = wait_until(lambda: record.exists() and record.read_text().split("\n"), message="chromium")
        assert "--kiosk" in args and "--kiosk-printing" in args and f"http://127.0.0.1:{port}/" in args
        assert not any("device=" in arg for arg in args)  # the token is not on the command line
    finally:
        assert kiosk.stop() == 0
    assert "Chromium started in kiosk mode" in kiosk.log.read_text()
    row = device_row(manager_session(server.base), server.base, "Lobby right")
    assert "No printer (browser printing)" in row


def lan_address() -> str | None:
    """This machine's address on its network, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_kiosk_page_in_chromium_prints_through_the_bridge(seeded, db_path, tmp_path, chromium_session):
    # From a page that is not on loopback, Chromium's Local Network Access blocks calls to
    # 127.0.0.1 unless started the way `queue-kiosk run` starts it: use those switches.
    host = lan_address()
    server = AppServer.on_sqlite(db_path, tmp_path / "server.log", host=host or "127.0.0.1").start()
    printed = tmp_path / "printer.bin"
    switches = [arg for arg in chromium_command("chromium", "about:blank", str(tmp_path))
                if arg.startswith("--disable-features=")]
    assert switches and "LocalNetworkAccessChecks" in switches[0]
    errors: list[str] = []
    kiosk = None
    try:
        config_path = paired_config(server, tmp_path, "Lobby left", {"type": "file", "path": str(printed)})
        kiosk = KioskProcess(config_path, free_port(), tmp_path / "kiosk.log", "--no-browser")
        wait_until(lambda: (bridge_status(kiosk.url) or {}).get("server") == "ok", message="a heartbeat")
        # Its own Chromium (other switches), from the run's Playwright (only one may run per thread).
        browser = chromium_session.browser_type.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS + switches)
        try:
            print_in_chromium(browser, server, kiosk, printed, errors, tmp_path)
        finally:
            browser.close()
    finally:
        if kiosk is not None:
            kiosk.stop()
        server.stop()
    assert errors == []


def print_in_chromium(browser, server, kiosk, printed, errors, tmp_path):
    page = open_page(browser, errors, viewport={"width": 1080, "height": 1920}, has_touch=True)
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}")
            if message.type == "error" and "CORS" in message.text else None)  # a refused bridge call
    page.goto(f"{kiosk.url}/")  # where `queue-kiosk run` points Chromium
    expect(page).to_have_url(f"{server.base}/kiosk/demo")
    # After a redirect from another site (the bridge on loopback) the address may show the kiosk
    # page before its script runs; a tap then would do nothing (one CI run: no ticket in 5 s).
    expect(page.locator("html")).to_have_attribute("data-kiosk", "ready")
    page.get_by_role("button", name=re.compile("Accounts and deposits")).click()
    expect(page.locator("#t-label")).to_have_text("A001")
    expect(page.locator("#t-print-status")).to_have_text("Please take your printed ticket.")
    save_screenshot(page, tmp_path, "kiosk-printed.png")
    track_url = page.locator("#ticket-screen").get_attribute("data-track-url")
    assert track_url.startswith(server.base + "/t/")
    assert_ticket_bytes(printed.read_bytes(), label="A001", url=track_url)


def test_status_and_test_print_check_the_printer_and_the_server(server, tmp_path):
    printed = tmp_path / "printer.bin"
    config_path = paired_config(server, tmp_path, "Lobby left", {"type": "file", "path": str(printed)})
    status = kiosk_cli(config_path, "status")
    assert status.returncode == 0, status.stderr
    assert "Printer (file): ok" in status.stdout and f"Server {server.base}: ok" in status.stdout
    sample = kiosk_cli(config_path, "test-print")
    assert sample.returncode == 0 and "Printed a test ticket" in sample.stdout
    assert_ticket_bytes(printed.read_bytes(), label="A001", url=server.base + "/t/test")
    server.stop()
    down = kiosk_cli(config_path, "status")
    assert down.returncode == 1 and "cannot reach" in down.stdout
