"""Timed jobs (APScheduler 3): the outbox sender, the no-show sweep and the day close.

Every job is idempotent by data (a conditional UPDATE flips each row once), so a job that runs
late, twice, or after downtime does the right thing. Still, only one process should run them
(FIELD-NOTES, "Scheduler"): production runs exactly one `queue-app scheduler` and sets
`QUEUE_APP_RUN_SCHEDULER=0` on web processes; a single-process setup starts them in the web
process that wins a file lock in the instance folder.

Periodic sweeps over tables, not one APScheduler job per reminder: APScheduler drops jobs that
missed their time, and its job store cannot be shared between processes.
"""
import atexit
import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import IO

import click
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.booking import operations as booking
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.customers import feedback as customer_feedback
from queue_app.customers import retention
from queue_app.customers import standing as customer_standing
from queue_app.notifications import notify
from queue_app.notifications.mail import driver_for
from queue_app.planning import estimate_accuracy
from queue_app.planning import plan as planning
from queue_app.tickets import numbering, queueing, remote, turn_alerts
from queue_app.webhooks import delivery as webhook_delivery
from queue_app.webhooks import operations as webhooks

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler.lock"
OUTBOX_SECONDS = 30
PLAN_SECONDS = 1800  # forecast and staffing plan: nightly, and the rest of today as arrivals come in
ALMOST_TURN_SECONDS = 30  # "almost your turn" alerts (estimates move as time passes, not only on changes)
SET_OFF_SECONDS = 30  # "time to set off" to remote tickets (tickets/remote.py), for the same reason
NO_SHOW_SECONDS = 60
CLOSE_DAY_SECONDS = 600
RETENTION_SECONDS = 6 * 3600  # idempotent; a few runs a day catch up after downtime
CUSTOMERS_SECONDS = 900  # checks which branches passed 03:00 local since their last recompute
FEEDBACK_SECONDS = 60  # feedback mail after finished visits
WEBHOOK_SECONDS = 10  # outbound webhooks (webhooks/operations.py): short, receivers expect events soon
WEBHOOK_BATCH = 50
OUTBOX_BATCH = 20
OUTBOX_ROUNDS = 10  # a backlog drains in rounds of one batch; the next tick takes the rest
EXTENSION_KEY = "queue_app_scheduler"
DRIFT_CHECKED_KEY = "queue_app_coverage_drift_checked"  # slug -> branch-local day last checked


# --- the jobs: each builds its own app context and session, and never lets an exception escape ---

def _run(app, name: str, work: Callable[[Session], object]) -> None:
    try:
        with app.app_context(), Session(db.engine) as session:
            work(session)
    except Exception:  # a job that raises is logged; the next tick tries again
        log.exception("timed job %s failed", name)


def send_outbox(app, now: datetime | None = None) -> None:
    def work(session: Session) -> None:
        driver = driver_for(app.config)
        try:
            for _ in range(OUTBOX_ROUNDS):
                report = notify.send_due(session, driver, now or utcnow(), batch=OUTBOX_BATCH)
                if report.handled < OUTBOX_BATCH:
                    break
        finally:
            driver.close()  # an SMS gateway's pooled connections

    _run(app, "send_outbox", work)


def sweep_no_shows(app, now: datetime | None = None) -> None:
    _run(app, "sweep_no_shows", lambda session: booking.sweep_no_shows(session, now=now))


def purge_personal_data(app, now: datetime | None = None) -> None:
    keep = timedelta(days=app.config["QUEUE_APP_RETENTION_DAYS"])
    _run(app, "retention", lambda session: retention.purge_personal_data(session, keep, now=now))


def recompute_customers(app, now: datetime | None = None) -> None:
    """Nightly per branch (after 03:00 local): standings, tiers and churn alerts. Idempotent."""
    def work(session: Session) -> None:
        moment = now or utcnow()
        branches = session.scalars(select(Branch).order_by(Branch.slug)).all()
        due = [b.slug for b in branches if customer_standing.nightly_due(session, b, moment)]
        session.commit()
        for slug in due:
            try:
                customer_standing.recompute_branch(session, slug, now=moment)
            except Exception:  # one broken branch must not stop the others
                log.exception("customer recompute failed for branch %s", slug)

    _run(app, "recompute_customers", work)


def invite_feedback(app, now: datetime | None = None) -> None:
    _run(app, "invite_feedback", lambda session: customer_feedback.invite_feedback(
        session, app.config["QUEUE_APP_BASE_URL"], now=now))


def close_days(app, now: datetime | None = None) -> None:
    def work(session: Session) -> None:
        moment = now or utcnow()
        slugs = session.scalars(select(Branch.slug).order_by(Branch.slug)).all()
        session.commit()  # end the read before the write transactions
        for slug in slugs:
            try:
                queueing.close_day(session, slug, now=now)
            except Exception:  # one broken branch must not stop the others
                log.exception("close_day failed for branch %s", slug)
            try:
                _warn_coverage_drift(app, session, slug, moment)
            except Exception:
                session.rollback()
                log.exception("estimate coverage check failed for branch %s", slug)

    _run(app, "close_days", work)


def _warn_coverage_drift(app, session: Session, slug: str, now: datetime) -> None:
    """Log a warning when the estimate ranges drift (planning/estimate_accuracy.py), once per branch-local
    day: the close job runs every few minutes, the closed days change only at midnight."""
    branch = session.scalar(select(Branch).where(Branch.slug == slug))
    today = numbering.local_day(now, branch.zone)
    checked = app.extensions.setdefault(DRIFT_CHECKED_KEY, {})  # per process; a restart checks again
    if checked.get(slug) == today:
        session.commit()
        return
    drift = estimate_accuracy.coverage_drift(session, branch, now)
    session.commit()  # end the read
    checked[slug] = today
    if drift is not None:
        log.warning(drift.message())


def alert_almost_turn(app, now: datetime | None = None) -> None:
    _run(app, "almost_turn", lambda session: turn_alerts.send_almost_turn(session, now=now))


def alert_set_off(app, now: datetime | None = None) -> None:
    _run(app, "set_off", lambda session: remote.send_set_off(session, now=now))


def deliver_webhooks(app, now: datetime | None = None) -> None:
    def work(session: Session) -> None:
        allow_private = app.config.get("QUEUE_APP_WEBHOOK_ALLOW_PRIVATE", False)
        for _ in range(OUTBOX_ROUNDS):
            report = webhook_delivery.deliver_due(session, now=now, batch=WEBHOOK_BATCH, allow_private=allow_private)
            if report.handled < WEBHOOK_BATCH:
                break
        webhooks.purge_log(session, now=now)

    _run(app, "deliver_webhooks", work)


def plan_branches(app, now: datetime | None = None) -> None:
    """Re-forecast and re-plan every branch (idempotent by data; managers' overrides are kept)."""
    def work(session: Session) -> None:
        branches = session.scalars(select(Branch).order_by(Branch.slug)).all()
        session.commit()
        for branch in branches:
            try:
                planning.plan_branch(session, branch, now)
            except Exception:  # one broken branch must not stop the others
                log.exception("planning failed for branch %s", branch.slug)

    _run(app, "plan_branches", work)


def add_jobs(scheduler, app) -> None:
    start = datetime.now(timezone.utc)  # first run at once: catch up after downtime
    common = {"coalesce": True, "max_instances": 1, "next_run_time": start, "replace_existing": True}
    scheduler.add_job(send_outbox, "interval", seconds=OUTBOX_SECONDS, args=[app], id="send_outbox", **common)
    scheduler.add_job(plan_branches, "interval", seconds=PLAN_SECONDS, args=[app], id="plan_branches", **common)
    scheduler.add_job(alert_almost_turn, "interval", seconds=ALMOST_TURN_SECONDS, args=[app], id="almost_turn",
                      **common)
    scheduler.add_job(alert_set_off, "interval", seconds=SET_OFF_SECONDS, args=[app], id="set_off", **common)
    scheduler.add_job(sweep_no_shows, "interval", seconds=NO_SHOW_SECONDS, args=[app], id="sweep_no_shows", **common)
    scheduler.add_job(close_days, "interval", seconds=CLOSE_DAY_SECONDS, args=[app], id="close_days", **common)
    scheduler.add_job(purge_personal_data, "interval", seconds=RETENTION_SECONDS, args=[app], id="retention", **common)
    scheduler.add_job(recompute_customers, "interval", seconds=CUSTOMERS_SECONDS, args=[app], id="recompute_customers",
                      **common)
    scheduler.add_job(invite_feedback, "interval", seconds=FEEDBACK_SECONDS, args=[app], id="invite_feedback", **common)
    scheduler.add_job(deliver_webhooks, "interval", seconds=WEBHOOK_SECONDS, args=[app], id="deliver_webhooks",
                      **common)


def new_scheduler() -> BackgroundScheduler:
    return BackgroundScheduler(timezone=timezone.utc, daemon=True)


# --- one process only: a file lock in the instance folder ---------------------------------------

def try_lock(instance_path: str) -> IO | None:
    """The open lock file if this process now holds `instance/scheduler.lock`, else None.

    flock locks belong to the open file: they vanish when the process dies (no stale lock after
    a crash), and a second open of the same file, even in the same process, cannot take it.
    """
    os.makedirs(instance_path, exist_ok=True)
    handle = open(os.path.join(instance_path, LOCK_NAME), "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")  # for people: which process runs the jobs
    handle.flush()
    return handle


def release_lock(handle: IO) -> None:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


# --- starting them ---------------------------------------------------------------------------------

def start_background(app) -> BackgroundScheduler | None:
    """Start the jobs in this process if the settings allow it and it wins the lock."""
    if app.extensions.get(EXTENSION_KEY) is not None:
        return app.extensions[EXTENSION_KEY]
    if not app.config.get("QUEUE_APP_RUN_SCHEDULER") or app.config.get("TESTING"):
        return None
    lock = try_lock(app.instance_path)
    if lock is None:
        log.info("another process holds %s: it runs the timed jobs, this one does not",
                 os.path.join(app.instance_path, LOCK_NAME))
        return None
    scheduler = new_scheduler()
    add_jobs(scheduler, app)
    scheduler.start()
    app.extensions[EXTENSION_KEY] = scheduler
    atexit.register(_stop, scheduler, lock)
    log.info("timed jobs started in process %s", os.getpid())
    if app.config.get("QUEUE_APP_ASYNC_MODE") == "gevent":
        # One thread: a job's computing (a forecast, half a second a branch) holds every request.
        log.warning("timed jobs run inside this gevent process: every request waits while one computes; "
                    "set QUEUE_APP_RUN_SCHEDULER=0 and run `queue-app scheduler` beside it "
                    "(docs/pages/operating/production.md)")
    return scheduler


def _stop(scheduler: BackgroundScheduler, lock: IO) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=False)
    release_lock(lock)


def run_foreground(app, stop: threading.Event | None = None) -> None:
    """Run the jobs until Ctrl+C or SIGTERM (or `stop` is set); a running job finishes first."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        # Process managers stop services with SIGTERM: shut down as cleanly as for Ctrl+C.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler = new_scheduler()
    add_jobs(scheduler, app)
    scheduler.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)


def init_app(app) -> None:
    """Web processes (gunicorn importing wsgi.py) start the jobs here, subject to settings and lock.

    Every CLI command builds the app too (init-db, seed-demo, scheduler...): those must not start
    background jobs, so under a click command nothing starts here; `run` and `demo` call
    `start_background` themselves and `scheduler` runs the jobs in the foreground.
    """
    app.extensions.setdefault(EXTENSION_KEY, None)
    if click.get_current_context(silent=True) is None:
        start_background(app)
