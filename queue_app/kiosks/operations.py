"""Kiosk devices: one-time pairing codes, pairing, heartbeats with printer state, page pings, retiring a device.

A manager creates a pairing code for a branch and a device name; `queue-kiosk pair CODE` on the
lobby machine exchanges it (POST /api/v1/kiosk/pair) for a device token. Codes are random, kept
only as SHA-256 hashes, expire after PAIRING_MINUTES and work once: the claim is one conditional
UPDATE, so two machines racing with the same code cannot both get a device.
"""
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queue_app.catalogue.operations import get_branch
from queue_app.core import row_cache
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.kiosks.models import KioskDevice, KioskPairingCode

PAIRING_MINUTES = 10
# Easy to read out and type: no 0/O, 1/I/L (the same alphabet as booking check-in codes).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10  # about 50 bits; with the rate limit and the 10-minute life, not guessable
PRINTER_STATES = ("ok", "paper_low", "paper_out", "offline", "error", "none")
# A device not heard from for this long is shown as offline on the manager page.
OFFLINE_AFTER = timedelta(minutes=2)
# The kiosk page pings every 10 s; writing one of them in this span keeps "online" true (well under
# OFFLINE_AFTER) without a database write per ping per kiosk.
PAGE_PING_RESOLUTION = timedelta(seconds=30)


@dataclass
class PairingCode:
    record: KioskPairingCode
    code: str  # shown once to the manager, e.g. "K7QX-M2PA-9T"


@dataclass
class Paired:
    device: KioskDevice
    token: str  # the device token, handed to the device once


def _now(now: datetime | None) -> datetime:
    return now or utcnow()


def format_code(code: str) -> str:
    """Groups of four for reading out: ABCD-EFGH-JK."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def create_pairing_code(session: Session, branch_slug: str, device_name: str, created_by_id: int | None = None,
                        now: datetime | None = None) -> PairingCode:
    name = (device_name or "").strip()
    if not name or len(name) > 100:
        raise Invalid("invalid_field", "name: 1 to 100 characters.", {"name": ["1 to 100 characters."]})
    now = _now(now)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        record = KioskPairingCode(branch_id=branch.id, device_name=name, code_hash=token_hash(code),
                                  created_at=now, expires_at=now + timedelta(minutes=PAIRING_MINUTES),
                                  created_by_id=created_by_id)
        session.add(record)
    return PairingCode(record=record, code=format_code(code))


def pair_device(session: Session, code: str, now: datetime | None = None) -> Paired:
    """The code becomes a registered device of its branch, named as the manager named it; once."""
    now = _now(now)
    digest = token_hash(normalise_code(code))
    token = new_token()
    with write_transaction(session):
        record = session.scalar(select(KioskPairingCode).where(KioskPairingCode.code_hash == digest))
        if record is None:
            raise NotFound("pairing_code_unknown", "No such pairing code. Check it, or ask a manager for a new one.")
        if record.used_at is not None:
            raise Conflict("pairing_code_used", "This pairing code was used already. Ask a manager for a new one.")
        if record.expires_at <= now:
            raise Conflict("pairing_code_expired", "This pairing code has expired. Ask a manager for a new one.")
        device = KioskDevice(branch_id=record.branch_id, name=record.device_name, token_hash=token_hash(token),
                             active=True, printer_state={})
        session.add(device)
        session.flush()
        # The claim: only one transaction can move used_at from NULL (PostgreSQL row lock; SQLite's
        # write lock is taken up front), so a code never makes two devices.
        claimed = session.execute(
            update(KioskPairingCode)
            .where(KioskPairingCode.id == record.id, KioskPairingCode.used_at.is_(None))
            .values(used_at=now, device_id=device.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            raise Conflict("pairing_code_used", "This pairing code was used already. Ask a manager for a new one.")
    return Paired(device=device, token=token)


def _clean_printer(printer) -> dict:
    if not isinstance(printer, dict):
        raise Invalid("invalid_field", "printer: must be an object.", {"printer": ["must be an object."]})
    state = printer.get("state")
    if state not in PRINTER_STATES:
        message = f"one of {', '.join(PRINTER_STATES)}."
        raise Invalid("invalid_field", f"printer.state: {message}", {"printer": [message]})
    detail = printer.get("detail") or ""
    if not isinstance(detail, str):
        raise Invalid("invalid_field", "printer.detail: must be text.", {"printer": ["detail must be text."]})
    return {"state": state, "detail": detail[:200]}


def record_heartbeat(session: Session, device_id: int, printer: dict, bridge_port: int | None = None,
                     auto_print: bool = True, now: datetime | None = None) -> KioskDevice:
    """The device is alive; keep its printer state and where its print bridge listens (loopback port)."""
    clean = _clean_printer(printer)
    if bridge_port is not None and (not isinstance(bridge_port, int) or isinstance(bridge_port, bool)
                                    or not 1024 <= bridge_port <= 65535):
        raise Invalid("invalid_field", "bridge_port: 1024 to 65535.", {"bridge_port": ["1024 to 65535."]})
    now = _now(now)
    with write_transaction(session):
        device = session.get(KioskDevice, device_id)
        if device is None or not device.active:
            raise NotFound("device_not_found", "This device is not registered (any more).")
        device.last_seen_at = now
        device.printer_state = {**clean, "bridge_port": bridge_port, "auto_print": bool(auto_print),
                                "reported_at": now.isoformat()}
    return device


def record_page_ping(session: Session, device_id: int, now: datetime | None = None) -> bool:
    """The kiosk page in the device's browser answered (a browser kiosk may have no print bridge).

    Returns whether it was written: pings closer together than PAGE_PING_RESOLUTION are not.
    """
    now = _now(now)
    seen = session.scalar(select(KioskDevice.page_seen_at).where(KioskDevice.id == device_id))
    if seen is not None and timedelta(0) <= now - seen < PAGE_PING_RESOLUTION:
        return False
    with write_transaction(session):
        written = session.execute(
            update(KioskDevice)
            .where(KioskDevice.id == device_id, KioskDevice.active.is_(True))
            .values(page_seen_at=now)
            .execution_options(synchronize_session=False, **row_cache.VOLATILE_ONLY)
        ).rowcount
    return written == 1


def last_contact(device: KioskDevice) -> tuple[datetime | None, str | None]:
    """When the device was last heard from and by which way: 'bridge' (print bridge heartbeat) or 'page'."""
    heard = [(moment, source) for moment, source in ((device.last_seen_at, "bridge"), (device.page_seen_at, "page"))
             if moment is not None]
    return max(heard, key=lambda pair: pair[0]) if heard else (None, None)


def deactivate_device(session: Session, device_id: int) -> KioskDevice:
    """A lost or replaced kiosk: its token stops working at once (API, kiosk page, heartbeats)."""
    with write_transaction(session):
        device = session.get(KioskDevice, device_id)
        if device is None:
            raise NotFound("device_not_found", "No such device.")
        device.active = False
    return device


def device_status(device: KioskDevice, now: datetime | None = None) -> str:
    """What the manager page shows: 'online', 'offline' (not heard from lately) or 'never' (neither
    a bridge heartbeat nor a page ping yet)."""
    seen, _source = last_contact(device)
    if seen is None:
        return "never"
    return "online" if _now(now) - seen <= OFFLINE_AFTER else "offline"


def branch_devices(session: Session, branch_id: int) -> list[KioskDevice]:
    return list(session.scalars(select(KioskDevice).where(KioskDevice.branch_id == branch_id)
                                .order_by(KioskDevice.active.desc(), KioskDevice.name, KioskDevice.id)))


def open_pairing_codes(session: Session, branch_id: int, now: datetime | None = None) -> list[KioskPairingCode]:
    """Codes handed out and not yet used nor expired (the code itself is never shown again)."""
    return list(session.scalars(
        select(KioskPairingCode)
        .where(KioskPairingCode.branch_id == branch_id, KioskPairingCode.used_at.is_(None),
               KioskPairingCode.expires_at > _now(now))
        .order_by(KioskPairingCode.expires_at)
    ))
