"""`queue-kiosk`: pair this machine with a branch, then run the kiosk (page, print bridge, heartbeats)."""
import logging
import os
import shutil
import signal
import subprocess
import threading
import urllib.parse
from pathlib import Path

import click

from kiosk import config as kiosk_config
from kiosk import server
from kiosk.bridge import Bridge, KioskState
from kiosk.printing import Printer, PrinterError, Ticket

log = logging.getLogger("queue_kiosk")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _load(path: Path) -> dict:
    try:
        return kiosk_config.load(path)
    except kiosk_config.ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config file (default: $QUEUE_KIOSK_CONFIG or ~/.config/queue-kiosk/kiosk.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log every heartbeat and print job.")
@click.pass_context
def main(ctx, config_path, verbose):
    """The lobby kiosk of the queue app: pair it once, then run it."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ctx.obj = config_path or kiosk_config.default_path()


@main.command()
@click.argument("code")
@click.option("--server", "server_url", required=True, help="The queue server, e.g. https://queue.example.com")
@click.pass_obj
def pair(config_path, code, server_url):
    """Exchange a one-time pairing CODE from the manager page for this device's token."""
    try:
        server_url = server.normalise_url(server_url)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--server") from None
    config = _load(config_path)
    try:
        paired = server.pair(server_url, code)
    except server.ServerError as error:
        raise click.ClickException(f"Pairing refused: {error}") from None
    config["server"] = {"url": server_url, "token": paired["token"], "branch": paired["branch"],
                        "device_name": paired["device_name"], "kiosk_path": paired["kiosk_path"],
                        "texts": paired.get("texts") or {}}
    kiosk_config.save(config_path, config)
    click.echo(f"Paired as \"{paired['device_name']}\" of {paired['branch_name']} ({paired['branch']}).")
    click.echo(f"Device token saved in {config_path}. Next: queue-kiosk run")


def _chromium(config: dict) -> str | None:
    configured = (config["browser"].get("chromium") or "").strip()
    if configured.lower() == "none":
        return None
    if configured:
        return shutil.which(configured) or (configured if os.path.isfile(configured) else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(binary: str, url: str, profile_dir: str) -> list[str]:
    """Full screen, no bars or prompts; window.print() goes straight to the default printer (fallback).

    LocalNetworkAccessChecks off: Chromium (142+) otherwise refuses the kiosk page's calls to the
    print bridge on 127.0.0.1 when the page is not itself on loopback (silently from an http://
    page, with a permission prompt from an https:// one), and nobody answers prompts in a lobby.
    """
    command = [binary, "--kiosk", "--no-first-run", "--noerrdialogs", "--disable-infobars", "--disable-translate",
               "--disable-session-crashed-bubble", "--disable-features=TranslateUI,LocalNetworkAccessChecks", "--kiosk-printing",
               "--autoplay-policy=no-user-gesture-required", "--check-for-update-interval=31536000",
               f"--user-data-dir={profile_dir}", url]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root otherwise
    return command


def send_heartbeat(config: dict, printer: Printer, state: KioskState, bridge_port: int | None) -> bool:
    printer_state = printer.state()
    state.update(printer=printer_state)
    try:
        answer = server.heartbeat(config["server"]["url"], config["server"]["token"], printer_state, bridge_port,
                                  printer.auto_print and printer.enabled)
    except server.ServerError as error:
        if error.status in (401, 403, 404):
            message = "the server refused this device's token (retired?): pair again with a new code"
        else:
            message = str(error)
        if state.server_ok is not False or state.server_message != message:
            log.warning("heartbeat failed: %s", message)
        state.update(server_ok=False, server_message=message)
        return False
    if state.server_ok is not True:
        log.info("server answers; printer: %s %s", printer_state["state"], printer_state.get("detail", ""))
    state.update(server_ok=True, server_message="", texts=answer.get("texts") or state.texts)
    return True


@main.command()
@click.option("--port", type=int, default=None, help="Print bridge port on 127.0.0.1 (default: [bridge] port, 8765).")
@click.option("--no-browser", is_flag=True, help="Do not start Chromium; print the kiosk address instead.")
@click.pass_obj
def run(config_path, port, no_browser):
    """Heartbeats, the loopback print bridge, and the kiosk page full screen (Chromium's kiosk mode)."""
    config = _load(config_path)
    if not config["server"].get("token"):
        raise click.ClickException(f"Not paired yet ({config_path}): run queue-kiosk pair CODE --server URL")
    try:
        printer = Printer(config["printer"])
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    server_url = config["server"]["url"]
    state = KioskState(texts=config["server"].get("texts"))
    kiosk_url = (server_url + config["server"]["kiosk_path"] + "?"
                 + urllib.parse.urlencode({"device": config["server"]["token"]}))
    bridge_port = port if port is not None else int(config["bridge"].get("port", 8765))
    try:
        bridge = Bridge(printer, state, server_url, server.origin(server_url), kiosk_url, port=bridge_port).start()
    except OSError as error:
        raise click.ClickException(f"Cannot listen on 127.0.0.1:{bridge_port}: {error.strerror}") from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    # The first heartbeat before the page opens: the server then knows where this bridge listens.
    send_heartbeat(config, printer, state, bridge.port)
    click.echo(f"Print bridge: {bridge.url}/print (printer: {printer.kind}, {state.printer['state']})", nl=True)
    click.echo(f"Kiosk page: {bridge.url}/", nl=True)

    def heartbeats():
        seconds = max(1, int(config["heartbeat"].get("seconds", 30)))
        while not stop.is_set():
            state.wake.wait(seconds)
            state.wake.clear()
            if not stop.is_set():
                send_heartbeat(config, printer, state, bridge.port)

    threading.Thread(target=heartbeats, name="heartbeat", daemon=True).start()
    browser = None
    chromium = None if no_browser else _chromium(config)
    if chromium:
        profile_dir = str(Path(config_path).parent / "chromium-profile")
        os.makedirs(profile_dir, exist_ok=True)
        browser = subprocess.Popen(chromium_command(chromium, f"{bridge.url}/", profile_dir),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        click.echo(f"Chromium started in kiosk mode (pid {browser.pid}).")
    elif not no_browser:
        click.echo("No Chromium found: open the kiosk page above in a browser, full screen.")
    try:
        while not stop.wait(1):
            if browser is not None and browser.poll() is not None:
                click.echo("Chromium closed; the print bridge keeps running (Ctrl+C to stop).")
                browser = None
    finally:
        bridge.stop()
        if browser is not None and browser.poll() is None:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
        click.echo("Kiosk stopped.")


@main.command()
@click.pass_obj
def status(config_path):
    """The printer's state, and whether the server accepts this device (sends one heartbeat)."""
    config = _load(config_path)
    printer = Printer(config["printer"])
    printer_state = printer.state()
    click.echo(f"Printer ({printer.kind}): {printer_state['state']} {printer_state.get('detail', '')}".rstrip())
    if not config["server"].get("token"):
        raise click.ClickException("Not paired yet: queue-kiosk pair CODE --server URL")
    state = KioskState()
    ok = send_heartbeat(config, printer, state, None)
    click.echo(f"Server {config['server']['url']}: {'ok' if ok else state.server_message}")
    if not ok:
        raise SystemExit(1)


@main.command("test-print")
@click.pass_obj
def test_print(config_path):
    """Print a sample ticket on the configured printer (to check paper, width and the Chinese font)."""
    config = _load(config_path)
    printer = Printer(config["printer"])
    ticket = Ticket(label="A001", track_url=(config["server"].get("url") or "https://example.com") + "/t/test",
                    branch=config["server"].get("device_name") or "Queue", caption="Test ticket / 測試 / 测试",
                    service="ESC/POS", time="", lines=("Chinese: 請稍候 / 请稍候",), qr_hint="QR", footer="queue-kiosk")
    try:
        printer.print_ticket(ticket)
    except PrinterError as error:
        raise click.ClickException(f"Not printed: {error.state}: {error.detail}") from None
    click.echo(f"Printed a test ticket on the {printer.kind} printer.")


if __name__ == "__main__":
    main()
