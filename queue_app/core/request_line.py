"""The request line: a process's requests take turns on its one interpreter, in arrival order.

A worker serves many requests at once on threads, but Python runs one thread at a time (the
GIL). Left to the GIL, every request in flight gets a share of the interpreter, so each takes as
long as all of them together, and the share each gets is uneven: at 20 kiosks p99 was twice p50,
and every statement's wait for the GIL after SQLite released it cost system time too
(bench/issuance.py, docs/pages/benchmarks.md). In line, a request runs alone and finishes
in its own few milliseconds; the ones behind it wait for the ones ahead, which is what they did
anyway, but evenly.

- A turn held longer than the slice (QUEUE_APP_REQUEST_LINE_SLICE_MS, 20 ms by default; 0 turns the
  line off) stops blocking: the next turn starts beside it. A slow page, a request waiting for a
  lock or for another service, never holds up the lobby for more than a slice, and nothing can
  deadlock on the line.
- Background CPU work (the played queue's replays, tickets/played_queue.py) takes turns in the same
  line, a few milliseconds each (`Paced`), instead of taking the interpreter from the requests for a
  whole run.
- Socket.IO traffic does not go through the line: its middleware sits outside it (create_app), and
  a long-poll or a WebSocket lives far longer than a slice.

The line is per process; correctness never depends on it (two requests may always overlap, and
the database's locks decide), it only orders the work.
"""
import os
import threading
import time
from collections import deque
from contextlib import contextmanager

DEFAULT_SLICE_S = 0.020
BACKGROUND_TURN_S = 0.004  # CPU a background turn runs before going to the back of the line
# Between its turns, background work sleeps this long. Under gevent nothing else runs until the
# running greenlet waits, and requests that have arrived are not in the line yet: their greenlets
# start only when the event loop polls the sockets, which sleep(0) does not do.
BACKGROUND_PAUSE_S = 0.0001
WAITED_KEY = "queue_app.waited_in_line_s"  # WSGI environ: seconds the request waited for its turn


class RequestLine:
    def __init__(self, slice_s: float = DEFAULT_SLICE_S):
        self.slice_s = slice_s
        self._lock = threading.Lock()
        # Each waiting turn is a plain lock, held until its turn comes (the cheapest hand-over:
        # Event and Condition are Python code around the same lock).
        self._waiting: deque[threading.Lock] = deque()  # oldest first
        self._holder: object | None = None  # the turn that holds the line
        self._since = 0.0  # when it got it (monotonic)
        self._watcher_pid = 0  # the process whose watcher thread runs (a forked worker starts its own)
        self._watcher_wake = threading.Event()

    def _take(self) -> object:
        with self._lock:
            if self._holder is None:
                turn = object()
                self._holder, self._since = turn, time.monotonic()
                return turn
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
            if self._watcher_pid != os.getpid():
                self._watcher_pid = os.getpid()
                threading.Thread(target=self._watch, name="request-line", daemon=True).start()
            elif len(self._waiting) == 1:
                self._watcher_wake.set()
        turn.acquire()  # released by the hand-over
        return turn

    def _hand_to_next(self) -> None:
        """The first in line holds the line (under self._lock)."""
        self._holder, self._since = self._waiting.popleft(), time.monotonic()
        self._holder.release()

    def _give_back(self, turn: object) -> None:
        with self._lock:
            if self._holder is not turn:
                return  # it overran and the line moved on without it
            if self._waiting:
                self._hand_to_next()
            else:
                self._holder = None

    def _watch(self) -> None:
        """One thread watches the clock for the whole line (waiters sleep until handed their turn,
        so a hand-over wakes one thread): when the holder overruns its slice, the next one starts."""
        while True:
            with self._lock:
                timeout = None
                while self._waiting:
                    timeout = self.slice_s - (time.monotonic() - self._since)
                    if timeout > 0:
                        break
                    self._hand_to_next()  # the holder goes on beside the line
                    timeout = None
                self._watcher_wake.clear()
            self._watcher_wake.wait(timeout)

    @contextmanager
    def turn(self):
        """Wait for this thread's turn, hold it for the block (or until it overruns the slice)."""
        if self.slice_s <= 0:
            yield
            return
        turn = self._take()
        try:
            yield
        finally:
            self._give_back(turn)

    def __len__(self) -> int:
        """Turns waiting (the holder not counted)."""
        with self._lock:
            return len(self._waiting)


class Paced:
    """Background work in short turns of the line: `with Paced(line) as pace:` takes a turn, and
    each `pace()` goes to the back of the line once the turn has run BACKGROUND_TURN_S of CPU.
    `cpu_s` is the CPU the work has run in its turns: under gevent the thread's CPU clock also runs
    while other greenlets have the interpreter between them."""

    def __init__(self, line: RequestLine, turn_s: float = BACKGROUND_TURN_S):
        self.line, self.turn_s = line, turn_s
        self._turn = None
        self._began: float | None = None  # thread CPU clock at the start of the running turn
        self._spent = 0.0  # CPU of the turns before it

    def __enter__(self):
        self._enter()
        return self

    def __exit__(self, *exc):
        self._leave()

    @property
    def cpu_s(self) -> float:
        running = time.thread_time() - self._began if self._began is not None else 0.0
        return self._spent + running

    def _enter(self):
        if self.line.slice_s > 0:
            self._turn = self.line._take()
        self._began = time.thread_time()

    def _leave(self):
        if self._began is not None:
            self._spent += time.thread_time() - self._began
            self._began = None
        if self._turn is not None:
            self.line._give_back(self._turn)
            self._turn = None

    def __call__(self) -> None:
        if time.thread_time() - self._began >= self.turn_s:
            self._leave()
            time.sleep(BACKGROUND_PAUSE_S)
            self._enter()


# One per process: requests and background work of every app in it share the interpreter.
line = RequestLine()


def configure(slice_s: float) -> None:
    line.slice_s = slice_s


class InLine:
    """WSGI middleware: each request runs in its turn of the process's line. Only the application
    call is in line; a streamed body is sent after the turn."""

    def __init__(self, wsgi_app, request_line: RequestLine = line):
        self.wsgi_app, self.line = wsgi_app, request_line

    def __call__(self, environ, start_response):
        arrived = time.perf_counter()
        with self.line.turn():
            environ[WAITED_KEY] = time.perf_counter() - arrived  # the access line shows it (core/logs.py)
            return self.wsgi_app(environ, start_response)
