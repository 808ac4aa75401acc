"""The request line (core/request_line.py): requests take turns in arrival order, a turn that
overruns its slice stops blocking the line, background work takes short turns, and Socket.IO
traffic stays outside it. Real threads; the served app through its own WSGI stack."""
import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from helpers import make_app

from queue_app.core import request_line
from queue_app.core.request_line import Paced, RequestLine

pytestmark = pytest.mark.sqlite_only  # nothing here depends on the database


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_turns_are_taken_in_arrival_order():
    line = RequestLine(slice_s=10.0)
    order = []

    def request(name):
        with line.turn():
            order.append(name)

    with line.turn():  # the line is busy while the others arrive, one after another
        threads = []
        for name in range(8):
            thread = threading.Thread(target=request, args=(name,))
            thread.start()
            threads.append(thread)
            wait_for(lambda n=name: len(line) == n + 1)
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))


def test_a_turn_past_its_slice_lets_the_next_one_start_beside_it():
    line = RequestLine(slice_s=0.05)
    slow_may_end, inside = threading.Event(), []  # (name, monotonic time it got its turn)

    def slow():
        with line.turn():
            inside.append(("slow", time.monotonic()))
            slow_may_end.wait(5)

    def quick(name):
        with line.turn():
            inside.append((name, time.monotonic()))

    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    wait_for(lambda: len(inside) == 1)
    quick_threads = [threading.Thread(target=quick, args=(f"quick{i}",)) for i in range(3)]
    for thread in quick_threads:
        thread.start()
    for thread in quick_threads:
        thread.join(5)
    # The slow turn is still running; the others went on once it had held the line for a slice.
    assert {name for name, _ in inside[1:]} == {"quick0", "quick1", "quick2"}
    assert not slow_may_end.is_set()
    waited = inside[1][1] - inside[0][1]
    assert 0.03 <= waited < 2.0
    slow_may_end.set()
    slow_thread.join(5)
    # Ending the overrun turn hands nothing over: the line is free, not held twice.
    with line.turn():
        assert len(line) == 0


def test_a_line_with_no_slice_does_not_wait():
    line = RequestLine(slice_s=0)
    both_inside = threading.Barrier(2, timeout=2)

    def request():
        with line.turn():
            both_inside.wait()  # would time out if the second waited for the first

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not both_inside.broken


def test_background_work_gives_way_to_requests_between_short_turns():
    line = RequestLine(slice_s=10.0)
    done_at, served_at = [], []

    def background():
        with Paced(line, turn_s=0.002) as pace:
            end = time.thread_time() + 0.2  # 200 ms of CPU in 2 ms turns
            while time.thread_time() < end:
                sum(range(200))
                pace()
        done_at.append(time.monotonic())

    def request():
        with line.turn():
            served_at.append(time.monotonic())

    worker = threading.Thread(target=background)
    worker.start()
    time.sleep(0.02)
    request_thread = threading.Thread(target=request)
    request_thread.start()
    request_thread.join(5)
    worker.join(10)
    assert served_at[0] < done_at[0], "the request waited for the whole background run"


# Under gevent (QUEUE_APP_ASYNC_MODE=gevent, gunicorn -k gevent) a request's greenlet starts only
# when the event loop polls its socket, and nothing else runs until the running greenlet waits.
# Monkey patching must come before every import, so the check runs in its own interpreter.
GEVENT_PACED = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, socket, threading, time
    from queue_app.core.request_line import Paced, RequestLine

    line = RequestLine(slice_s=10.0)
    lobby, kiosk = socket.socketpair()
    served, done, cpu = [], [], []

    def burn(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            sum(range(200))

    def request():
        lobby.recv(1)  # the request arrives on its socket
        with line.turn():
            served.append(time.monotonic())
            burn(0.05)

    def background():
        with Paced(line, turn_s=0.002) as pace:
            end = time.monotonic() + 5
            while pace.cpu_s < 0.2 and time.monotonic() < end:  # 200 ms of its own CPU in 2 ms turns
                sum(range(200))
                pace()
            done.append(time.monotonic())
            cpu.append(pace.cpu_s)

    threads = [threading.Thread(target=request), threading.Thread(target=background)]
    for thread in threads:
        thread.start()
    time.sleep(0.01)  # a timer: runs only if the background gives the loop a turn
    kiosk.send(b"x")
    for thread in threads:
        thread.join()
    print(json.dumps({"served": served[0], "done": done[0], "cpu": cpu[0]}))
""")


def test_background_work_gives_way_to_requests_under_gevent_and_counts_only_its_own_cpu():
    pytest.importorskip("gevent")
    out = subprocess.run([sys.executable, "-c", GEVENT_PACED], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["served"] < result["done"], "the request waited for the whole background run"
    # The thread's CPU clock also ran for the request's 50 ms between the turns; the work's own
    # CPU (what spaces the played queue's replays) did not.
    assert 0.2 <= result["cpu"] < 0.24


def test_requests_wait_in_line_and_socket_io_does_not(db_path):
    app = make_app(db_path, QUEUE_APP_REQUEST_LINE_SLICE_MS=10_000)
    answers = {}

    def get(name, path):
        answers[name] = app.test_client().get(path).status_code

    try:
        with request_line.line.turn():  # someone else's turn, for longer than this test
            page = threading.Thread(target=get, args=("page", "/healthz"))
            page.start()
            began = time.monotonic()
            get("socket.io", "/socket.io/?EIO=4&transport=polling")  # the handshake, at once
            assert time.monotonic() - began < 2.0
            time.sleep(0.3)
            assert "page" not in answers
        page.join(5)
        assert answers == {"socket.io": 200, "page": 200}
    finally:
        request_line.configure(request_line.DEFAULT_SLICE_S)
