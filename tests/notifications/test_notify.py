"""Booking mail, reminders and the outbox sender on real SQLite, through a real SMTP server on loopback.

Every `now` is frozen and passed in; the real clock is never read. The demo branch is in
Asia/Taipei (services A, B, C; Mon-Fri 09:00-12:30 and 13:30-17:00; two counters serve A).
"""
import logging
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queue_app.booking import ics
from queue_app.booking import operations as booking
from queue_app.catalogue import operations as catalogue
from queue_app.jobs import scheduler as jobs
from queue_app.notifications import mail, notify
from queue_app.notifications.models import Notification

TAIPEI = ZoneInfo("Asia/Taipei")
BASE = "http://kiosk.test"
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=TAIPEI)  # a Monday
START = datetime(2026, 6, 3, 10, 0, tzinfo=TAIPEI)  # Wednesday
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def loggers_enabled(monkeypatch):
    """Alembic's env.py runs logging.fileConfig, which disables every logger that exists by then
    (the migrated_db fixture runs it in this process). Undo that for the loggers checked here."""
    for name in ("queue_app.notifications.mail", "queue_app.jobs.scheduler", "queue_app.notifications.notify"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)


def book(session, start=START, *, now=NOW, email="ann@example.test", phone=None, language="en", name="Ann Lee"):
    return booking.book(session, "demo", "A", start, name=name, email=email, phone=phone, language=language,
                        now=now, base_url=BASE)


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def calendar_of(message):
    part = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    raw = part.get_payload(decode=True)
    calendar = Calendar.from_ical(raw)
    return part, raw, calendar, calendar.walk("VEVENT")[0]


def rows(session, **where):
    session.expire_all()
    query = select(Notification).order_by(Notification.id)
    for column, value in where.items():
        query = query.where(getattr(Notification, column) == value)
    return session.scalars(query).all()


def test_a_booking_sends_a_confirmation_with_a_calendar_invite_in_the_customers_language(session, mailbox, driver):
    made = book(session, email="Mei@Example.test", language="zh_Hant", name="陳美")
    report = notify.send_due(session, driver, NOW + MINUTE)
    assert (report.sent, report.handled) == (1, 1)
    [message] = mailbox.messages
    assert message["To"] == "mei@example.test" and message["From"] == "queue@kiosk.test"
    assert message["Subject"].startswith("預約確認：Demo Branch 帳戶與存款")  # the service in the customer's language
    body = body_of(message)
    assert f"{BASE}/a/{made.manage_token}" in body  # the manage link, only in the confirmation
    assert made.appointment.check_in_code in body
    assert "2026年6月3日（星期三）10:00（Asia/Taipei，UTC+08:00）" in body  # branch-local time and zone
    part, raw, calendar, event = calendar_of(message)
    assert part.get_param("method") == "REQUEST" and str(calendar["METHOD"]) == "REQUEST"
    assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF line ends, untouched by the mail encoding
    assert str(event["UID"]) == f"appointment-{made.appointment.id}@kiosk.test"
    assert event.decoded("SEQUENCE") == 0
    start = event.decoded("DTSTART")
    assert start == START and start.utcoffset() == timedelta(0)
    assert event.decoded("DTEND") - start == timedelta(minutes=6)
    # Sent once: the row is done and a second run finds nothing.
    assert notify.send_due(session, driver, NOW + MINUTE).handled == 0
    [confirmation] = rows(session, template="booking_confirmed")
    assert (confirmation.status, confirmation.attempts, confirmation.language) == ("sent", 1, "zh_Hant")
    reminders = rows(session, template="reminder")
    assert [(r.dedupe_key, r.next_attempt_at) for r in reminders] == [
        (f"reminder-24h:{made.appointment.id}:0", START - timedelta(hours=24)),
        (f"reminder-2h:{made.appointment.id}:0", START - timedelta(hours=2)),
    ]


def test_the_confirmation_says_what_can_still_change_and_its_link_keeps_the_language(session, mailbox, driver):
    # Outside the cut-off (60 minutes): change or cancel, and until when.
    made = book(session, language="zh_Hans", name="王伟")
    ahead = book(session, START + timedelta(hours=1), email="bo@example.test")
    notify.send_due(session, driver, NOW + MINUTE)
    zh, en = sorted(mailbox.messages, key=lambda m: m["To"] != "ann@example.test")
    link = next(line for line in body_of(zh).splitlines() if f"/a/{made.manage_token}" in line)
    assert link.endswith("&lang=zh_Hans") and "?proof=" in link  # the page opens in the booking's language
    assert ("See, change or cancel your booking: " in body_of(en) and
            "You can reschedule until Wed 3 Jun 2026 10:00 (Asia/Taipei), and cancel until the visit starts."
            in body_of(en)), body_of(en)
    assert f"/a/{ahead.manage_token}?proof=" in body_of(en) and "lang=en" in body_of(en)

    # Inside the cut-off: cancel only, with the branch's phone when it has one; as the page says.
    catalogue.update_branch(session, "demo", phone="+886 2 2345 6789",
                            booking_rules={"change_cutoff_minutes": 180})
    soon = book(session, NOW + timedelta(hours=2), email="cy@example.test")
    notify.send_due(session, driver, NOW + MINUTE)
    body = body_of(next(m for m in mailbox.messages if m["To"] == "cy@example.test"))
    assert f"See or cancel your booking: {BASE}/a/{soon.manage_token}?proof=" in body
    assert ("You can cancel until the visit starts; changes are no longer possible online. "
            "To change it, call the branch at +886223456789.") in body
    assert "See, change" not in body
    # Moved to a time inside the cut-off: the change notice no longer offers another change.
    booking.reschedule(session, ahead.manage_token, NOW + timedelta(hours=2, minutes=30), now=NOW, base_url=BASE)
    notify.send_due(session, driver, NOW + MINUTE)
    change = body_of(mailbox.messages[-1])
    assert mailbox.messages[-1]["Subject"].startswith("Booking changed:")
    assert "changes are no longer possible online. To change it, call the branch at +886223456789." in change
    assert "change your booking again" not in change


def test_reschedule_updates_the_same_event_cancel_removes_it_and_no_reminder_follows(session, mailbox, driver):
    made = book(session)
    uid = f"appointment-{made.appointment.id}@kiosk.test"
    notify.send_due(session, driver, NOW + MINUTE)

    moved = datetime(2026, 6, 4, 11, 0, tzinfo=TAIPEI)
    booking.reschedule(session, made.manage_token, moved, now=NOW + timedelta(hours=1), base_url=BASE)
    assert notify.send_due(session, driver, NOW + timedelta(hours=1, minutes=1)).sent == 1
    change = mailbox.messages[-1]
    assert change["Subject"].startswith("Booking changed: Accounts and deposits at Demo Branch, now Thu 4 Jun 2026")
    assert made.manage_token not in body_of(change)  # later messages refer to "your booking" and the code
    assert made.appointment.check_in_code in body_of(change)
    assert "To change your booking again, use the link in your booking confirmation." in body_of(change)
    _part, _raw, calendar, event = calendar_of(change)
    assert str(event["UID"]) == uid and event.decoded("SEQUENCE") == 1
    assert event.decoded("DTSTART") == moved and str(calendar["METHOD"]) == "REQUEST"
    old = [r for r in rows(session, template="reminder") if r.dedupe_key.endswith(":0")]
    assert [r.status for r in old] == ["cancelled", "cancelled"]

    booking.cancel(session, made.manage_token, now=NOW + timedelta(hours=2), base_url=BASE)
    assert notify.send_due(session, driver, NOW + timedelta(hours=2, minutes=1)).sent == 1
    cancelled = mailbox.messages[-1]
    assert cancelled["Subject"].startswith("Booking cancelled:")
    part, _raw, calendar, event = calendar_of(cancelled)
    assert part.get_param("method") == "CANCEL" and str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED" and str(event["UID"]) == uid and event.decoded("SEQUENCE") == 2

    # Every moment a reminder was once planned for, and the visit itself: nothing more goes out.
    for at in (START - timedelta(hours=24), START - timedelta(hours=2), moved - timedelta(hours=24),
               moved - timedelta(hours=2), moved):
        assert notify.send_due(session, driver, at).sent == 0
    assert len(mailbox.raw) == 3
    assert {r.status for r in rows(session, template="reminder")} == {"cancelled"}


def test_a_booking_three_hours_ahead_gets_the_two_hour_reminder_only(session, mailbox, driver):
    now = START - timedelta(hours=3)
    made = book(session, now=now)
    [reminder] = rows(session, template="reminder")
    assert reminder.dedupe_key == f"reminder-2h:{made.appointment.id}:0"
    assert notify.send_due(session, driver, now + MINUTE).sent == 1  # the confirmation
    assert notify.send_due(session, driver, START - timedelta(hours=2, minutes=1)).sent == 0  # not yet
    assert notify.send_due(session, driver, START - timedelta(hours=2)).sent == 1
    assert notify.send_due(session, driver, START - timedelta(hours=1)).sent == 0
    subjects = [m["Subject"] for m in mailbox.messages]
    assert len(subjects) == 2 and subjects[1].startswith("Reminder: Accounts and deposits at Demo Branch")
    assert "10:00 (Asia/Taipei, UTC+08:00)" in body_of(mailbox.messages[1])


def test_each_reminder_is_sent_once_when_two_senders_run_at_the_same_moment(app, session, mailbox, driver):
    two_senders_send_each_reminder_once(session, mailbox, driver)


@pytest.mark.own_postgres  # on PostgreSQL whatever the pass: run once
def test_each_reminder_is_sent_once_by_two_senders_on_postgres(pg_session, mailbox, driver):
    # PostgreSQL: the losing UPDATE waits for the winner's row lock, re-reads the row, finds it
    # no longer pending and claims nothing.
    two_senders_send_each_reminder_once(pg_session, mailbox, driver)


def two_senders_send_each_reminder_once(session, mailbox, driver):
    for i in range(3):
        book(session, START + i * timedelta(minutes=15), email=f"person{i}@example.test")
    assert notify.send_due(session, driver, NOW + MINUTE).sent == 3
    engine = session.get_bind()

    def race(at):
        barrier = threading.Barrier(2)
        reports, errors = [], []

        def sender():
            with Session(engine) as own:
                barrier.wait()
                try:
                    reports.append(notify.send_due(own, driver, at))
                except Exception as error:  # surfaced below: a thread's exception would be lost
                    errors.append(error)

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return sum(r.sent for r in reports)

    assert race(START - timedelta(hours=24) + timedelta(minutes=31)) == 3  # all three 24 h reminders due
    assert race(START - timedelta(hours=2) + timedelta(minutes=31)) == 3  # and the three 2 h reminders
    reminders = [m for m in mailbox.messages if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 6
    assert sorted(m["To"] for m in reminders) == sorted(f"person{i}@example.test" for i in range(3) for _ in range(2))
    assert [(r.status, r.attempts) for r in rows(session, template="reminder")] == [("sent", 1)] * 6


def test_smtp_down_then_up_delivers_once_after_the_backoff(session, smtp_server, driver):
    book(session)
    first = NOW + MINUTE
    report = notify.send_due(session, driver, first)  # nothing listens on the port yet
    assert (report.sent, report.retried) == (0, 1)
    [row] = rows(session, template="booking_confirmed")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at == first + MINUTE  # first backoff: one minute

    smtp_server.start()
    assert notify.send_due(session, driver, first + timedelta(seconds=30)).handled == 0  # still backing off
    assert notify.send_due(session, driver, first + MINUTE).sent == 1
    assert notify.send_due(session, driver, first + MINUTE).handled == 0
    assert len(smtp_server.raw) == 1
    [row] = rows(session, template="booking_confirmed")
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, first + MINUTE)
    assert "ConnectionRefusedError" in row.last_error  # the failure stays on record


class BrokenDriver:
    def send(self, notification):
        raise OSError("gateway down")


def test_failures_back_off_exponentially_and_give_up_after_ten_attempts(session):
    book(session)
    at = NOW + MINUTE
    delays = []
    for attempt in range(1, 11):
        notify.send_due(session, BrokenDriver(), at)
        [row] = rows(session, template="booking_confirmed")
        assert row.attempts == attempt and row.last_error == "OSError: gateway down"
        if attempt < 10:
            assert row.status == "pending"
            delays.append(int((row.next_attempt_at - at) / MINUTE))
            at = row.next_attempt_at
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert row.status == "failed"
    assert notify.send_due(session, BrokenDriver(), at + timedelta(days=1)).failed == 0  # left alone


def test_a_phone_only_booking_is_told_by_sms(session, mailbox, driver, caplog):
    made = book(session, email=None, phone="+886 912 345 678", language="zh_Hans", name="王伟")
    with caplog.at_level(logging.INFO, logger="queue_app.notifications.mail"):
        assert notify.send_due(session, driver, NOW + MINUTE).sent == 1
    [row] = rows(session, template="booking_confirmed")
    assert (row.channel, row.recipient) == ("sms", "+886912345678")
    [record] = [r for r in caplog.records if r.name == "queue_app.notifications.mail"]
    text = record.getMessage()
    assert text.startswith("SMS to +886912345678: 【Demo Branch】预约确认")
    assert made.appointment.check_in_code in text and f"{BASE}/a/{made.manage_token}" in text
    assert "（Asia/Taipei）" in text
    assert mailbox.raw == []  # no mail for a booking without an address


def test_a_reminder_is_dropped_at_send_time_when_the_booking_was_checked_in(session, mailbox, driver):
    made = book(session)
    notify.send_due(session, driver, NOW + MINUTE)
    # The sender was down all day; the customer checked in before it came back.
    booking.check_in(session, "demo", made.appointment.check_in_code, now=START - timedelta(minutes=25))
    report = notify.send_due(session, driver, START - timedelta(minutes=20))
    assert (report.sent, report.dropped) == (0, 2)
    assert [(r.status, r.last_error) for r in rows(session, template="reminder")] == [
        ("cancelled", "booking is checked_in")] * 2
    assert len(mailbox.raw) == 1


def test_a_late_24_hour_reminder_gives_way_to_the_2_hour_one(session, mailbox, driver):
    book(session)
    notify.send_due(session, driver, NOW + MINUTE)
    report = notify.send_due(session, driver, START - timedelta(minutes=90))  # down from 24 h to 1.5 h before
    assert (report.sent, report.dropped) == (1, 1)
    assert [r.status for r in rows(session, template="reminder")] == ["cancelled", "sent"]


def test_a_row_left_sending_by_a_dead_sender_is_sent_after_its_lease(session, mailbox, driver):
    book(session)
    [row] = rows(session, template="booking_confirmed")
    claimed_at = NOW + MINUTE
    # What a sender that died after its claim leaves behind.
    session.execute(update(Notification).where(Notification.id == row.id)
                    .values(status="sending", next_attempt_at=claimed_at + notify.LEASE))
    session.commit()
    assert notify.send_due(session, driver, claimed_at + timedelta(minutes=9)).handled == 0
    assert notify.send_due(session, driver, claimed_at + timedelta(minutes=10)).sent == 1
    [row] = rows(session, template="booking_confirmed")
    assert (row.status, row.attempts) == ("sent", 2) and "lease expired" in row.last_error
    assert len(mailbox.raw) == 1


def test_the_calendar_folds_long_lines_and_escapes_text(session):
    made = book(session)
    summary = "長" * 40 + ", with; a \\ backslash\nand a new line"
    text = ics.appointment_calendar(made.appointment, host="kiosk.test", now=NOW, summary=summary)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")[:-1]
    assert max(len(line.encode("utf-8")) for line in lines) <= 75
    assert any(line.startswith(" ") for line in lines)  # the summary was folded
    event = Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == summary and str(event["LOCATION"]) == "Demo Branch"


def test_smtp_urls_give_scheme_host_port_and_credentials():
    plain = mail.parse_smtp_url("smtp://mail.example.test")
    assert (plain.scheme, plain.host, plain.port, plain.username) == ("smtp", "mail.example.test", 25, None)
    tls = mail.parse_smtp_url("smtps://user%40example.test:p%3Ass@mail.example.test")
    assert (tls.port, tls.username, tls.password) == (465, "user@example.test", "p:ss")
    assert mail.parse_smtp_url("smtp+starttls://u:p@mail.example.test:2525").port == 2525
    assert mail.parse_smtp_url("smtp+starttls://mail.example.test").port == 587
    with pytest.raises(ValueError):
        mail.parse_smtp_url("http://mail.example.test")


def test_the_outbox_job_prints_mail_with_the_console_driver_and_jobs_log_their_errors(app, session, capsys, caplog):
    book(session)
    app.config.update(QUEUE_APP_SMTP_URL=None, QUEUE_APP_MAIL_DRIVER="console")
    jobs.send_outbox(app, now=NOW + MINUTE)
    printed = capsys.readouterr().out
    assert "EMAIL to ann@example.test" in printed and "Subject: Booking confirmed:" in printed
    assert "[attachment booking.ics, METHOD:REQUEST]" in printed
    assert [r.status for r in rows(session, template="booking_confirmed")] == ["sent"]
    with caplog.at_level(logging.ERROR, logger="queue_app.jobs.scheduler"):
        jobs._run(app, "broken", lambda _session: 1 / 0)  # logged, not raised into the scheduler
    assert "timed job broken failed" in caplog.text


def test_the_scheduler_lock_is_held_by_one_opener_at_a_time(tmp_path):
    first = jobs.try_lock(str(tmp_path))
    assert first is not None
    try:
        assert jobs.try_lock(str(tmp_path)) is None
        probe = ("import sys; from queue_app.jobs.scheduler import try_lock; "
                 "sys.exit(0 if try_lock(sys.argv[1]) is None else 1)")
        other = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=Path(__file__).resolve().parents[2])
        assert other.returncode == 0  # another process cannot take it either
    finally:
        jobs.release_lock(first)
    again = jobs.try_lock(str(tmp_path))
    assert again is not None
    jobs.release_lock(again)


def test_tests_never_start_the_background_scheduler(app):
    assert app.extensions["queue_app_scheduler"] is None
