"""Dates and times as customers read them: branch-local, in the page's language, with the zone.

The server (Babel) and the browser (Intl.DateTimeFormat, in static/js/slots.js) format from the
same CLDR "full" date pattern, so a slot reads the same before and after booking:
"Wednesday, 2 December 2026, 10:30 (Asia/Taipei)", "2026年12月2日 星期三 10:30（Asia/Taipei）".
English uses the British forms (day before month, 24-hour clock), which read unambiguously
around the world; times are always the branch's wall clock, never the phone's.
"""
from datetime import date, datetime

from babel.dates import format_date
from flask_babel import get_locale
from flask_babel import gettext as _

# Babel locale and BCP 47 tag (for the browser's Intl) of each shipped language.
BABEL_LOCALES = {"en": "en_GB", "zh_Hant": "zh_Hant_TW", "zh_Hans": "zh_Hans_CN"}
INTL_TAGS = {"en": "en-GB", "zh_Hant": "zh-TW", "zh_Hans": "zh-CN"}


def current_language() -> str:
    code = str(get_locale() or "en")
    return code if code in BABEL_LOCALES else "en"


def long_date(day: date) -> str:
    """'Wednesday, 2 December 2026' in the page's language."""
    return format_date(day, format="full", locale=BABEL_LOCALES[current_language()])


def when_pattern() -> str:
    """The template for a date, a time and the zone (the browser fills it in for slots)."""
    return _("%(date)s, %(time)s (%(zone)s)", date="{date}", time="{time}", zone="{zone}")


def local_when(moment: datetime, zone_name: str, zone) -> str:
    """A UTC instant as the branch's wall clock: date, time and the IANA zone name."""
    local = moment.astimezone(zone)
    return when_pattern().format(date=long_date(local.date()), time=local.strftime("%H:%M"), zone=zone_name)


def issued_text(iso_local: str) -> str:
    """A ticket's issue time (ISO, already branch-local) in the page's language, as on the screen and the
    printed ticket: '27 Nov 2026 10:05', '2026年11月27日 10:05'."""
    if not iso_local:
        return ""
    moment = datetime.fromisoformat(iso_local)
    day = format_date(moment.date(), format="medium", locale=BABEL_LOCALES[current_language()])
    return f"{day} {moment:%H:%M}"


def local_clock(moment: datetime, zone) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def page_calendar() -> dict:
    """What slots.js needs to write dates like the server does."""
    return {"intl": INTL_TAGS[current_language()], "when": when_pattern()}
