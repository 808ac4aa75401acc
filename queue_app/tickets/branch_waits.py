"""Live waits of every branch: per active service the wait for a ticket taken now (the lobby
display's figure), and whether the branch is open now or when it opens. What the branch list
(`/`), the public feed (GET /api/v1/waits) and the embeddable widget show.

Numbers only: no ticket, name or contact data, so all of it is public.

Cost. The figures come from the branch's played queue (played_queue.py) when a fresh one is kept
(the lobby display and the kiosks keep one while they are in use); otherwise one full run is
played and kept. Each branch's answer is then kept CACHE_S seconds per process and database, so a
busy feed costs at most one estimator run per branch every CACHE_S, whatever the request rate.
"""
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch
from queue_app.core.models import utcnow
from queue_app.tickets import estimates, numbering, played_queue
from queue_app.tickets.estimate_learning import MINUTE

CACHE_S = 15.0  # the feed's Cache-Control max-age too


@dataclass(eq=False)
class _Kept:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one computation per branch at a time
    at: datetime | None = None
    waits: dict | None = None


# Per engine (database), then per branch id; weak keys, as in played_queue.
_kept: "weakref.WeakKeyDictionary[Engine, dict[int, _Kept]]" = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def forget(engine: Engine | None = None) -> None:
    """Drop kept answers (of one database, or all)."""
    with _registry:
        if engine is None:
            _kept.clear()
        else:
            _kept.pop(engine, None)


def _new_ticket_estimates(session: Session, branch: Branch, now: datetime, live: bool) -> dict:
    """Per service id, the estimate of a ticket taken now (estimates.summarise(...).new_ticket)."""
    played = played_queue.played_for(session, branch.id) if live else None
    if (played is None or not 0 <= played.age_s(now) <= played.serves_for_s()
            or played.day != numbering.local_day(now, branch.zone)):
        played = played_queue.play(session, branch, now)
    with played.lock:
        return estimates.summarise(played.queue, branch, later=max(0.0, played.age_s(now)) / MINUTE).new_ticket


def _local(moment: datetime | None, branch: Branch) -> str | None:
    return moment.astimezone(branch.zone).isoformat(timespec="minutes") if moment else None


def branch_waits(session: Session, branch: Branch, now: datetime, *, live: bool = False) -> dict:
    """One branch's public figures, computed now (see `waits` for the kept ones)."""
    is_open, opens_at = hours.open_now(branch.opening_hours, branch.closed_dates, now, branch.zone)
    per_service = _new_ticket_estimates(session, branch, now, live)
    services = [s for s in branch.services if s.active]  # in code order
    return {
        "slug": branch.slug,
        "name": branch.name,
        "timezone": branch.timezone,
        "open_now": is_open,
        "opens_at": _local(opens_at, branch),
        "latitude": branch.latitude,
        "longitude": branch.longitude,
        "remote_tickets": bool(branch.allow_remote_tickets),
        "bookable": any(s.booking_enabled for s in services),
        "services": [
            {"code": s.code, "name": s.name, "names": dict(s.names or {}),
             **per_service.get(s.id, estimates.NOT_WAITING).as_dict(branch.zone)}
            for s in services
        ],
        "updated_at": now.astimezone(branch.zone).isoformat(timespec="seconds"),
    }


def waits(session: Session, branches: list[Branch], now: datetime | None = None) -> list[dict]:
    """`branch_waits` of each branch, each kept CACHE_S seconds (per process and database). With
    an explicit `now` (tests) an answer is reused only for a `now` within CACHE_S after its own.
    The dicts are shared by every request: read them, never change them."""
    live = now is None
    now = now or utcnow()
    engine = session.get_bind()
    with _registry:
        per_branch = _kept.setdefault(engine, {})
        entries = [per_branch.setdefault(b.id, _Kept()) for b in branches]
    found = []
    for branch, kept in zip(branches, entries):
        with kept.lock:  # a second request for the same branch waits for the first one's figures
            if kept.at is None or not 0 <= (now - kept.at).total_seconds() < CACHE_S:
                kept.waits, kept.at = branch_waits(session, branch, now, live=live), now
            found.append(kept.waits)
    return found


def wait_key(figures: dict) -> tuple:
    """Sort key "shortest wait first": the branch's shortest wait over the services served now;
    branches without one (closed, no counter yet) after those with one, then by name."""
    minutes = [s["minutes"] for s in figures["services"] if s["state"] == "waiting" and s["minutes"] is not None]
    return (0 if minutes else 1, min(minutes) if minutes else 0, figures["name"].casefold())
