"""Live updates over Socket.IO, namespace /live.

Clients emit `join` with {"branch": slug} (displays, staff consoles) or {"ticket": token} (the
holder's phone) and get the current snapshot at once, so a reconnecting client is never stale.
After each committed queue change the server pushes:
  queue   - branch summary (waiting per service, now serving per counter, recent calls) to the branch room
  called  - {label, counter, counter_names, service, recall, at} to the branch room, on every call and recall
  ticket  - the holder's status, position and estimate, to that ticket's room only
Rooms carry numbers only; names and phone numbers never leave the server this way. Service and
counter names come in every language (`names`); each page shows its own (live.js localName).

Publishing runs on one background task fed by a queue, and the REST request that made the change
does not wait for it. While no client is connected to this process (and no message queue carries
pushes to other instances' clients) a change does not even reach the queue. `called` goes out as
soon as the task takes the change; a branch's `queue` snapshot and its phones' `ticket` statuses
are debounced: the branch's first change opens a window (QUEUE_APP_PUSH_DEBOUNCE_MS, 250 ms by
default) and at its end one round is built from the state then, whatever the number of changes.
"""
import gc
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field

from flask_socketio import Namespace, SocketIO, emit, join_room, leave_room
from socketio import PubSubManager, RedisManager
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core import events
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.tickets import queueing
from queue_app.tickets import read_models as lobby
from queue_app.tickets.models import Ticket

NAMESPACE = "/live"
FREEZE_EVERY_S = 60
DEFAULT_DEBOUNCE_S = 0.25
log = logging.getLogger(__name__)


def branch_room(branch_id: int) -> str:
    return f"branch:{branch_id}"


def ticket_room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def branch_snapshot(session: Session, branch: Branch, per_service: dict | None = None) -> dict:
    return {**lobby.queue_summary(session, branch, per_service=per_service),
            "recent": lobby.recent_calls(session, branch)}


def _refusal(code: str, message: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": message}}


class LiveNamespace(Namespace):
    def on_join(self, data):
        if not isinstance(data, dict) or not ({"branch", "ticket"} & data.keys()):
            return _refusal("bad_join", "Join with {branch: slug} or {ticket: token}.")
        try:
            if "branch" in data:
                branch = catalogue.get_branch(db.session, str(data["branch"]))
                join_room(branch_room(branch.id))
                emit("queue", branch_snapshot(db.session, branch))
                return {"ok": True, "room": "branch"}
            ticket = queueing.find_by_token(db.session, str(data["ticket"]))
            join_room(ticket_room(ticket.id))
            emit("ticket", lobby.ticket_status(db.session, ticket))
            return {"ok": True, "room": "ticket"}
        except DomainError as error:
            return _refusal(error.code, error.message)
        finally:
            db.session.remove()  # socket handlers are not requests: end the session ourselves

    def on_leave(self, data):
        if isinstance(data, dict) and "branch" in data:
            branch = db.session.scalar(select(Branch).where(Branch.slug == str(data["branch"])))
            db.session.remove()
            if branch is not None:
                leave_room(branch_room(branch.id))
        return {"ok": True}


def socketio_of(app) -> SocketIO:
    """The app's Socket.IO server (made in init_app, one per app)."""
    return app.extensions["socketio"]


def _anyone_connected(server: SocketIO) -> bool:
    """A client connected to /live on this process, or a message queue (then clients of other
    instances, invisible from here, may be listening)."""
    manager = server.server.manager
    return isinstance(manager, PubSubManager) or bool(manager.rooms.get(NAMESPACE))


@dataclass(eq=False)
class _Pushing:
    """What the publisher keeps of one app, found by its database engine (an app's commits come
    from its engine): its Socket.IO server, its snapshot window and, per waiting ticket, the last
    status pushed (touched only by the publisher's thread)."""

    server: SocketIO
    debounce_s: float
    last_pushed: dict[int, dict] = field(default_factory=dict)


class Publisher:
    """Turns committed changes into pushes, on one background task per process. It serves every
    app of the process, each by its engine (two apps' ticket ids overlap), through that app's own
    Socket.IO server."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        self._started = False
        self._apps: weakref.WeakKeyDictionary[Engine, _Pushing] = weakref.WeakKeyDictionary()
        self.woken = 0  # commits handed to the task (tests: none while nobody listens)

    def configure(self, engine: Engine, server: SocketIO, debounce_s: float) -> None:
        """An app's init_app: the server its pushes go through and the snapshot window of its branches."""
        self._apps[engine] = _Pushing(server, debounce_s)

    def enqueue(self, changes: list[events.QueueChange], bind: Engine) -> None:
        pushing = self._apps.get(bind)
        if pushing is None:
            return
        if not _anyone_connected(pushing.server):
            # Nobody to push to: no queue, no thread switch, no session. What was last pushed to
            # phones is forgotten, so a phone that comes back is not refused a status it lacks.
            pushing.last_pushed.clear()
            return
        self.woken += 1
        self._queue.put((changes, bind))
        if not self._started:
            self._started = True
            pushing.server.start_background_task(self._run)

    def _run(self) -> None:
        frozen_at = 0.0
        due: dict[tuple[Engine, int], float] = {}  # (engine, branch): when its snapshot round goes out
        held: dict[tuple[Engine, int], list[events.QueueChange]] = {}
        taken = 0  # commits taken off the queue whose pushes are not all out (wait_idle counts them)
        while True:
            timeout = max(0.0, min(due.values()) - time.monotonic()) if due else None
            try:
                batch = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                batch = []
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            taken += len(batch)
            now = time.monotonic()
            for changes, bind in batch:
                pushing = self._apps.get(bind)
                window = pushing.debounce_s if pushing is not None else DEFAULT_DEBOUNCE_S
                for change in changes:
                    key = (bind, change.branch_id)
                    due.setdefault(key, now + window)  # trailing edge of a window opened by the first change
                    held.setdefault(key, []).append(change)
            try:
                self.announce(batch)  # the display's banner is not held back by the window
            except Exception:  # a push failure must not stop later pushes
                log.exception("announcing calls failed")
            ready = [key for key, at in due.items() if at <= time.monotonic()]
            if ready:
                by_bind: dict[Engine, list[events.QueueChange]] = {}
                for key in ready:
                    del due[key]
                    by_bind.setdefault(key[0], []).extend(held.pop(key))
                try:
                    self.publish(by_bind)
                except Exception:
                    log.exception("publishing queue changes failed")
            if not due:
                for _ in range(taken):
                    self._queue.task_done()
                taken = 0
            if time.monotonic() - frozen_at > FREEZE_EVERY_S:
                # With thousands of sockets, a full garbage-collection pass over their long-lived
                # objects takes 150+ ms and lands on an emit; frozen objects are skipped.
                gc.freeze()
                frozen_at = time.monotonic()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Until every enqueued change is pushed, snapshot windows included (graceful shutdown,
        tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def announce(self, batch: list[tuple[list[events.QueueChange], Engine]]) -> None:
        for changes, bind in batch:
            calls = [change for change in changes if change.type in ("called", "recalled")]
            pushing = self._apps.get(bind)
            if calls and pushing is not None:
                with Session(bind) as session:
                    announce_calls(session, calls, pushing.server)

    def publish(self, by_bind: dict[Engine, list[events.QueueChange]]) -> None:
        for bind, changes in by_bind.items():
            pushing = self._apps.get(bind)
            if pushing is not None:
                with Session(bind) as session:
                    push_snapshots(session, changes, pushing.server, pushing.last_pushed)


def _watched_tickets(server: SocketIO) -> set[int] | None:
    """Tickets whose room has a client on this process; None (all) when a message queue is used,
    since clients of other instances are not visible from here."""
    manager = server.server.manager
    if isinstance(manager, PubSubManager):
        return None
    rooms = manager.rooms.get(NAMESPACE, {})  # also holds None (everyone) and one room per client
    return {int(room.split(":", 1)[1]) for room, members in rooms.items()
            if isinstance(room, str) and room.startswith("ticket:") and members}


def _has_listeners(server: SocketIO, room: str) -> bool:
    manager = server.server.manager
    return isinstance(manager, PubSubManager) or bool(manager.rooms.get(NAMESPACE, {}).get(room))


def announce_calls(session: Session, changes: list[events.QueueChange], server: SocketIO) -> None:
    """`called` to the branch room, for each call and recall among the changes."""
    for change in changes:
        if change.type in ("called", "recalled"):
            branch = session.get(Branch, change.branch_id)
            server.emit("called", {
                "label": change.label, "counter": change.data.get("counter"),
                "counter_names": change.data.get("counter_names") or {},
                "service": change.data.get("service"), "recall": change.type == "recalled",
                "at": change.at.astimezone(branch.zone).isoformat(timespec="seconds"),
            }, to=branch_room(change.branch_id), namespace=NAMESPACE)


def push_snapshots(session: Session, changes: list[events.QueueChange], server: SocketIO,
                   last_pushed: dict[int, dict]) -> None:
    """The changed branches' `queue` snapshots and their phones' `ticket` statuses. `last_pushed`:
    per waiting ticket, the status last pushed to its phone (kept by the publisher, per app)."""
    branches = {change.branch_id for change in changes}  # every waiting ticket of a changed branch may have moved
    changed_tickets = {change.ticket_id for change in changes if change.ticket_id is not None}
    watched = _watched_tickets(server)
    for branch_id in branches:
        branch = session.get(Branch, branch_id)
        display = _has_listeners(server, branch_room(branch_id))  # no display or console open: no snapshot
        phones = watched is None or bool(watched)  # no phone following a ticket here: no statuses
        if not display and not phones:
            continue
        # One estimator run gives every waiting ticket's estimate and each service's next one.
        statuses, per_service = lobby.waiting_statuses(session, branch, only=watched if phones else set())
        if display:
            server.emit("queue", branch_snapshot(session, branch, per_service),
                          to=branch_room(branch_id), namespace=NAMESPACE)
        if not phones:
            continue
        for ticket_id in (changed_tickets - statuses.keys()) & (watched or changed_tickets):
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None and ticket.branch_id == branch_id:
                statuses[ticket_id] = lobby.ticket_status(session, ticket)
        for ticket_id, status in statuses.items():
            if last_pushed.get(ticket_id) == status:
                continue  # re-estimated to the same figures: nothing new for that phone
            if status["status"] == "waiting":
                last_pushed[ticket_id] = status
            else:
                last_pushed.pop(ticket_id, None)
            server.emit("ticket", status, to=ticket_room(ticket_id), namespace=NAMESPACE)


# One thread per process, like a pool: it keeps nothing of an app but under that app's engine.
publisher = Publisher()


class DegradingRedisManager(RedisManager):
    """The Redis message queue, degrading to "this instance only" while Redis is unreachable.

    An emit is handled for this instance's own clients first and then published for the others
    (python-socketio's PubSubManager.emit). The stock publisher tries to reconnect twice on every
    emit and has no timeouts, so a Redis host that vanished could stall all pushes for minutes.
    Here publishing has short timeouts and, after a failure, is skipped for RETRY_AFTER_S: this
    instance's displays and phones keep getting pushes at once, other instances' clients miss
    them until Redis answers again (the next `queue` push is a full snapshot, so they catch up at
    the next change). The listener reconnects by itself (with backoff, in the base class).
    """

    RETRY_AFTER_S = 5.0

    def __init__(self, url: str, **kwargs):
        # Connect timeout only for the listener: a read timeout would break its idle subscription.
        super().__init__(url, redis_options={"socket_connect_timeout": 2, "socket_keepalive": True}, **kwargs)
        self._publisher = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._publish_lock = threading.Lock()

    def _publish(self, data):
        if time.monotonic() < self._retry_at:
            return
        with self._publish_lock:
            try:
                if self._publisher is None:
                    self._publisher = self._get_redis_module().Redis.from_url(
                        self.redis_url, socket_connect_timeout=1, socket_timeout=2)
                self._publisher.publish(self.channel, self.json.dumps(data))
            except Exception as error:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.error("message queue unreachable (%s): pushes reach only this instance's clients "
                              "until it is back", error)
                self._retry_at = time.monotonic() + self.RETRY_AFTER_S
                return
            if self._down_since is not None:
                log.warning("message queue reachable again after %.0f s", time.monotonic() - self._down_since)
                self._down_since = None

    @property
    def degraded(self) -> bool:
        return self._down_since is not None


def _client_manager(url: str | None) -> dict:
    if url and url.startswith(("redis://", "rediss://")):
        return {"client_manager": DegradingRedisManager(url, channel="flask-socketio")}
    return {"message_queue": url} if url else {}


def init_app(app) -> None:
    # A Socket.IO server per app (Flask-SocketIO keeps the server on its extension object, so one
    # object shared at module level would leave the first of two apps in a process emitting
    # through the second one's server); found again with socketio_of(app).
    server = SocketIO(
        app,
        async_mode=app.config["QUEUE_APP_ASYNC_MODE"],
        **_client_manager(app.config["QUEUE_APP_MESSAGE_QUEUE"]),
        # Same-origin browsers only; non-browser clients (kiosk app, tests) send no Origin.
        cors_allowed_origins=app.config.get("QUEUE_APP_CORS_ORIGINS") or None,
    )
    server.on_namespace(LiveNamespace(NAMESPACE))
    with app.app_context():
        publisher.configure(db.engine, server, app.config.get("QUEUE_APP_PUSH_DEBOUNCE_MS", 250) / 1000)
        events.subscribe(db.engine, publisher.enqueue)  # this app's commits, not another app's
