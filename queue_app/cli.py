"""The `queue-app` command (also `flask --app queue_app ...`)."""
import os

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.demo.seed import DEMO_BRANCH, DEMO_PASSWORD, seed_demo_data
from queue_app.tickets import queueing


def _fail(error: DomainError):
    raise click.ClickException(error.message)


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the database schema (Alembic migrations)."""
    from queue_app import MIGRATIONS_DIR

    upgrade(directory=str(MIGRATIONS_DIR))
    click.echo("Database is at the latest schema.")


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """Demo data: branch `demo`, three services and counters, staff logins, a kiosk token."""
    token = seed_demo_data()
    if token is None:
        click.echo(f"Branch '{DEMO_BRANCH}' exists already; nothing seeded. New kiosk token: queue-app kiosk-token {DEMO_BRANCH} --name NAME")
        return
    click.echo(f"Seeded branch '{DEMO_BRANCH}' (Asia/Taipei) with services A, B, C and Counters 1-3 (open).")
    click.echo(f"Staff logins (password '{DEMO_PASSWORD}'): admin@demo.test, manager@demo.test, staff1@demo.test, staff2@demo.test, staff3@demo.test")
    click.echo(f"Kiosk device token: {token}")


@click.command("create-staff")
@with_appcontext
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "manager", "staff"]), default="staff", show_default=True)
@click.option("--branch", "branches", multiple=True, help="Branch slug; repeat for several.")
@click.option("--name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters; asked for when not given.")
def create_staff(email, role, branches, name, password):
    """Create a staff account."""
    try:
        staff = catalogue.create_staff(db.session, email, password, role, list(branches), name=name,
                                       hash_cost=current_app.config["PASSWORD_HASH_COST"])
    except DomainError as error:
        _fail(error)
    click.echo(f"Created {staff.role} {staff.email} (id {staff.id}).")


@click.command("kiosk-token")
@with_appcontext
@click.argument("slug")
@click.option("--name", required=True, help="Where the kiosk stands, e.g. 'Lobby left'.")
def kiosk_token(slug, name):
    """Register a kiosk device; prints its token as the last line (shown only once)."""
    try:
        device, token = catalogue.create_kiosk_device(db.session, slug, name)
    except DomainError as error:
        _fail(error)
    click.echo(f"Kiosk '{device.name}' registered for branch '{slug}'. Its token (shown only once):")
    click.echo(token)


@click.command("close-day")
@with_appcontext
@click.argument("slug")
def close_day(slug):
    """Cancel tickets left open from earlier days (also run nightly)."""
    try:
        count = queueing.close_day(db.session, slug)
    except DomainError as error:
        _fail(error)
    click.echo(f"Closed {count} ticket(s) from earlier days.")


@click.command("run")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
def run(host, port):
    """Serve the app (threaded). In production use gunicorn (see the docs: operating/production)."""
    _require_current_schema()
    from queue_app.jobs import scheduler as jobs

    # Timed jobs in this process unless QUEUE_APP_RUN_SCHEDULER=0 or another process has them.
    jobs.start_background(current_app._get_current_object())
    click.echo(f"Serving on http://{host}:{port}/  (API docs: http://{host}:{port}/api/v1/docs)")
    _serve(host, port)


def _require_current_schema() -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from queue_app import MIGRATIONS_DIR

    config = current_app.extensions["migrate"].migrate.get_config(str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise click.ClickException(
            f"The database at {db.engine.url.render_as_string(hide_password=True)} is at schema "
            f"{current or 'none'}, not {head}: run `queue-app init-db` first."
        )


def _serve(host: str, port: int) -> None:
    # Werkzeug's threaded server with WebSocket support: fine for one branch and the demo;
    # production runs gunicorn (docs: operating/production). Flask's CLI marks the process so
    # app.run() (which socketio.run calls) refuses to start; this command is meant to serve, so lift
    # the mark.
    os.environ.pop("FLASK_RUN_FROM_CLI", None)
    from queue_app import freeze_start_up_objects
    from queue_app.realtime.live import socketio_of

    app = current_app._get_current_object()
    freeze_start_up_objects()
    socketio_of(app).run(app, host=host, port=port, use_reloader=False, log_output=False,
                         allow_unsafe_werkzeug=True)


def _demo_kiosk_token() -> str:
    """The demo kiosk's token, kept in the instance folder so every `demo` run can print its link."""
    from queue_app.core.security import token_hash
    from queue_app.kiosks.models import KioskDevice

    path = os.path.join(current_app.instance_path, "demo-kiosk-token")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            token = file.read().strip()
        if db.session.scalar(select(KioskDevice.id).where(KioskDevice.token_hash == token_hash(token),
                                                          KioskDevice.active.is_(True))):
            return token
    _device, token = catalogue.create_kiosk_device(db.session, DEMO_BRANCH, "Demo kiosk")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as file:
        file.write(token)
    return token


def _seed_demo_history() -> None:
    """Weeks of simulated lobby history (once per database), then the forecast and plan from it."""
    from queue_app.core.models import utcnow
    from queue_app.demo.history import HISTORY_WEEKS, has_history, seed_demo_history
    from queue_app.planning import plan as planning
    from queue_app.tickets.numbering import local_day

    branch = catalogue.get_branch(db.session, DEMO_BRANCH)
    if not has_history(db.session, DEMO_BRANCH, local_day(utcnow(), branch.zone)):
        click.echo(f"Simulating the last {HISTORY_WEEKS} weeks of the demo lobby, day by day "
                   "(once per database):")

        def progress(done: int, total: int, stats) -> None:
            # Plain lines, so a log or a terminal without a TTY shows progress too.
            click.echo(f"  {stats.day:%a %Y-%m-%d}  {stats.tickets:3d} tickets, {stats.abandoned:2d} gave up"
                       f"   ({done}/{total})")

        seed_demo_history(db.session, DEMO_BRANCH, weeks=HISTORY_WEEKS, progress=progress)
    planning.plan_branch(db.session, catalogue.get_branch(db.session, DEMO_BRANCH))


@click.command("demo")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--no-traffic", is_flag=True, help="Do not simulate arrivals and counters.")
def demo(host, port, no_traffic):
    """Create and seed the database, start simulated lobby traffic, and serve."""
    from queue_app import MIGRATIONS_DIR
    from queue_app.demo.traffic import (
        HUMAN_COUNTER,
        DemoTraffic,
        open_around_the_clock,
        start_demo_traffic,
    )
    from queue_app.jobs import scheduler as jobs

    app = current_app._get_current_object()
    upgrade(directory=str(MIGRATIONS_DIR))
    if seed_demo_data() is not None:
        open_around_the_clock(db.session, DEMO_BRANCH)
    _seed_demo_history()
    # Weeks of customer history: segments, a churn list and feedback results (once per database).
    # After the simulated lobby history: its has_history() counts past tickets, and these
    # customers' past visits would otherwise make it skip.
    from queue_app.demo.customers import seed_customer_history

    seed_customer_history(db.session, DEMO_BRANCH)
    # Booking mail and SMS are printed here, whatever SMTP settings the shell has.
    app.config["QUEUE_APP_MAIL_DRIVER"] = "console"
    app.config["QUEUE_APP_SMS_DRIVER"] = "console"
    base = f"http://{host}:{port}"
    if not os.environ.get("QUEUE_APP_BASE_URL"):
        app.config["QUEUE_APP_BASE_URL"] = base  # tracking links and QR codes point here
    kiosk = _demo_kiosk_token()
    traffic = DemoTraffic(DEMO_BRANCH)
    if not no_traffic:
        # People already waiting, then your ticket behind them: still waiting when the pages are up.
        traffic.fill_queue(db.session)
    phone = queueing.issue_ticket(db.session, DEMO_BRANCH, "A")
    click.echo(f"""
Queue app demo at {base}/

  Lobby display   {base}/display/{DEMO_BRANCH}
  Kiosk           {base}/kiosk/{DEMO_BRANCH}?device={kiosk}
  Staff console   {base}/staff   (all counters are simulated; {HUMAN_COUNTER} is yours once you work it there)
  Booking page    {base}/b/{DEMO_BRANCH}
  Manage          {base}/manage/
  Dashboard       {base}/manage/branches/{DEMO_BRANCH}/dashboard   (forecast, plan, waits)
  Customers       {base}/manage/branches/{DEMO_BRANCH}/customers   (segments, churn list, feedback)
  Your phone      {base}/t/{phone.token}   (ticket {phone.ticket.label})
  API docs        {base}/api/v1/docs

  Logins, password '{DEMO_PASSWORD}': admin@demo.test, manager@demo.test, staff1@demo.test
  Database: {db.engine.url.render_as_string(hide_password=True)}
""")
    if not no_traffic:
        start_demo_traffic(app, traffic)
        click.echo("Simulated walk-ins and counters are running. Stop with Ctrl+C.")
    if jobs.start_background(app):
        click.echo("Timed jobs are running here; booking mail and SMS are printed below.")
    _serve(host, port)


@click.command("scheduler")
@with_appcontext
def scheduler():
    """Run the timed jobs only (outbox mail, no-show sweep, day close), in the foreground, until Ctrl+C.

    Production runs exactly one of these, and web processes with QUEUE_APP_RUN_SCHEDULER=0.
    """
    from queue_app.jobs import scheduler as jobs

    app = current_app._get_current_object()
    _require_current_schema()
    # QUEUE_APP_RUN_SCHEDULER is not read here: running this command is the decision. The lock
    # still stops a second scheduler next to a web process (or scheduler) of this instance folder.
    lock = jobs.try_lock(app.instance_path)
    if lock is None:
        raise click.ClickException(
            f"Another process holds {os.path.join(app.instance_path, jobs.LOCK_NAME)} and runs the timed jobs; "
            "start web processes with QUEUE_APP_RUN_SCHEDULER=0 when this command runs them."
        )
    try:
        click.echo(f"Timed jobs running (outbox every {jobs.OUTBOX_SECONDS} s, no-show sweep every "
                   f"{jobs.NO_SHOW_SECONDS} s, day close every {jobs.CLOSE_DAY_SECONDS} s). Stop with Ctrl+C.")
        jobs.run_foreground(app)
    finally:
        jobs.release_lock(lock)
    click.echo("Timed jobs stopped.")


def _sqlite_path() -> str:
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise click.ClickException("backup and restore are for the SQLite database; for PostgreSQL use pg_dump "
                                   "and pg_restore (see the docs: operating/backups).")
    return url.database


@click.command("backup")
@with_appcontext
@click.argument("target", type=click.Path(dir_okay=False, writable=True))
def backup(target):
    """Copy the SQLite database to TARGET, consistently, while the server keeps running."""
    import sqlite3

    source_path = _sqlite_path()
    if os.path.exists(target):
        raise click.ClickException(f"{target} exists; choose a new file name.")
    # SQLite's online backup API copies a consistent snapshot even while others write.
    with sqlite3.connect(source_path, timeout=30) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    copy.close()
    source.close()
    click.echo(f"Backed up {source_path} to {target}.")


@click.command("restore")
@with_appcontext
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the current database without asking.")
def restore(source, yes):
    """Replace the SQLite database with a backup (stop the server first)."""
    import sqlite3

    target_path = _sqlite_path()
    with sqlite3.connect(source) as check:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise click.ClickException(f"{source} is damaged (integrity check failed); nothing restored.")
    check.close()
    if not yes:
        click.confirm(f"Replace {target_path} with {source}?", abort=True)
    db.engine.dispose()
    with sqlite3.connect(source) as backup_db, sqlite3.connect(target_path, timeout=30) as live:
        backup_db.backup(live)
    backup_db.close()
    live.close()
    click.echo(f"Restored {target_path} from {source}.")


@click.command("simulate")
@click.option("--scenario", "scenario_path", required=True, type=click.Path(dir_okay=False),
              help="Scenario file (see ../shared/scenarios/README.md for the fields).")
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same run.")
@click.option("--days", type=click.IntRange(min=1), help="Open days to simulate (default: the scenario's).")
@click.option("--report", "report_path", required=True, type=click.Path(dir_okay=False),
              help="Write one JSON object per ticket here (JSON lines).")
@click.option("--database", type=click.Path(dir_okay=False),
              help="Keep the simulated branch's database in this new SQLite file (default: temporary).")
def simulate_command(scenario_path, seed, days, report_path, database):
    """Simulate a branch day by day through the real queue, booking and estimate code."""
    import logging

    from queue_app.demo import scenarios, simulation

    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        scenario = scenarios.load_scenario(scenario_path)
    except scenarios.ScenarioError as error:
        raise click.ClickException(f"Scenario: {error}") from None

    def progress(index, total, day):
        waits = day.waits
        mean = sum(waits) / len(waits) if waits else 0.0
        click.echo(f"day {index}/{total} {day.day}: {day.tickets} tickets, {day.served} served, "
                   f"{day.abandoned} gave up, mean wait {mean:.1f} min", err=True)

    try:
        simulation.simulate(scenario, seed, report_path, days=days, database=database, progress=progress)
    except scenarios.ScenarioError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Report written to {report_path}.")


@click.command("forecast")
@click.option("--history", "history_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with columns start,count (ISO local start times, any interval).")
@click.option("--interval", default=15, show_default=True, type=click.IntRange(min=1, max=1440), help="minutes")
@click.option("--horizon-days", default=1, show_default=True, type=click.IntRange(min=1, max=60))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="CSV written with columns start,mean,p10,p90.")
def forecast_command(history_path, interval, horizon_days, out_path):
    """Forecast arrivals per interval for the next open days from a history of counts."""
    import csv
    from datetime import datetime, time, timedelta

    from queue_app.planning import forecasting

    rows = []
    with open(history_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"start", "count"} <= set(reader.fieldnames):
            raise click.ClickException("The history needs the columns start,count.")
        for number, row in enumerate(reader, start=2):
            try:
                start = datetime.fromisoformat(row["start"].strip())
                count = float(row["count"])
            except (TypeError, ValueError):
                raise click.ClickException(f"Line {number}: start must be an ISO time and count a number.") from None
            if count < 0:
                raise click.ClickException(f"Line {number}: count must not be negative.")
            rows.append((start.replace(tzinfo=None), count))
    days, counts, grid = forecasting.series_from_rows(rows, interval)
    if len(days) < 7:
        raise click.ClickException("At least a week of history is needed.")
    targets = forecasting.next_open_days(days, horizon_days)
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "mean", "p10", "p90"])
        for day in forecasting.forecast_days(days, counts, targets):
            for slot, mean, p10, p90 in zip(grid, day.mean, day.p10, day.p90):
                start = datetime.combine(day.day, time()) + timedelta(minutes=slot * interval)
                writer.writerow([start.isoformat(timespec="minutes"), f"{mean:.3f}", f"{p10:.3f}", f"{p90:.3f}"])
    click.echo(f"Forecast for {', '.join(d.isoformat() for d in targets)} written to {out_path}.", err=True)


@click.command("staffing")
@click.option("--rate", required=True, type=click.FloatRange(min=0), help="arrivals per hour")
@click.option("--aht-minutes", required=True, type=click.FloatRange(min=0, min_open=True), help="mean visit, minutes")
@click.option("--target", default=0.8, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--within-seconds", required=True, type=click.FloatRange(min=0))
@click.option("--patience-minutes", type=click.FloatRange(min=0, min_open=True),
              help="mean patience: Erlang A (customers give up) instead of Erlang C")
@click.option("--max-abandon", default=0.05, show_default=True, type=click.FloatRange(0, 1))
def staffing_command(rate, aht_minutes, target, within_seconds, patience_minutes, max_abandon):
    """The fewest counters that meet a service level (Erlang C, or Erlang A with patience)."""
    import json

    from queue_app.planning.staffing import staff_for

    try:
        plan = staff_for(rate, aht_minutes, target, within_seconds, patience_minutes, max_abandon)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(plan.as_dict()))


COMMANDS = (simulate_command, forecast_command, staffing_command, backup, restore, init_db, seed_demo, create_staff, kiosk_token, close_day, run, demo, scheduler)


def init_app(app) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


# Production is the default mode (queue_app/core/config.py). `demo` runs in development, and only the
# commands that serve or run the timed jobs refuse to start without QUEUE_APP_SECRET_KEY in
# production; init-db, seed-demo, kiosk-token, the tools (forecast, staffing, simulate) and the
# like need no key.
DEVELOPMENT_COMMANDS = ("demo",)
SECRET_KEY_COMMANDS = ("run", "scheduler")
_GROUP_OPTIONS_WITH_VALUES = ("-e", "--env-file", "-A", "--app")


def command_name(args: list[str]) -> str | None:
    """The sub-command in a `queue-app` command line (the first word that is not a group option)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _GROUP_OPTIONS_WITH_VALUES:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


class QueueAppGroup(FlaskGroup):
    def __init__(self, **kwargs):
        super().__init__(create_app=self._create_app, add_default_commands=False, add_version_option=False,
                         **kwargs)
        self.add_command(shell_command)
        self.add_command(routes_command)
        self.invoked = None  # the sub-command of this run (not `command`: Group.command is a decorator)

    def make_context(self, info_name, args, parent=None, **extra):
        self.invoked = None if "--help" in args else command_name(list(args))
        if self.invoked in DEVELOPMENT_COMMANDS:
            os.environ.setdefault("QUEUE_APP_ENV", "development")
        return super().make_context(info_name, args, parent=parent, **extra)

    def _create_app(self):
        from queue_app import create_app

        try:
            return create_app(None if self.invoked in SECRET_KEY_COMMANDS else {"QUEUE_APP_REQUIRE_SECRET_KEY": False})
        except RuntimeError as refused:  # production without a secret key: one line, not a traceback
            raise click.ClickException(str(refused)) from None


main = QueueAppGroup(help="Appointment and queue management: queue-app COMMAND --help for each.")


if __name__ == "__main__":
    main()
