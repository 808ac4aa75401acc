"""English, Traditional and Simplified Chinese: complete catalogs, every page and message in each.

- Every message the code and templates ask for (extracted as `pybabel extract -F babel.cfg` does)
  has a translation, not fuzzy, in both catalogs.
- The kiosk, phone (tracking, booking, booking management), display, staff and manager pages,
  rendered in each Chinese locale, look every gettext call up in the catalog and find it (a
  recording wrapper around Flask-Babel's translations), and show no English words beyond data
  (branch, service and counter names, which are the branch's own).
- `Accept-Language` picks the script by region (FIELD-NOTES): TW, HK, MO Traditional; CN, SG
  and plain `zh` Simplified.
- A page, a booking mail and a printed ticket in each locale.
"""
import html.parser
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import flask_babel
import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from helpers import add_appointment, first_free_slot, login_as, now_minute
from sqlalchemy import select

from queue_app.accounts.models import Staff
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.kiosks.models import KioskDevice
from queue_app.notifications import notify
from queue_app.notifications.models import Notification

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "queue_app" / "translations"
CHINESE = ("zh_Hant", "zh_Hans")


def extracted_catalog(tmp_path):
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l",
                                "-o", str(pot), str(ROOT)])
    with pot.open("rb") as handle:
        return read_po(handle)


def test_every_extracted_message_has_a_translation_in_both_catalogs(tmp_path):
    template = extracted_catalog(tmp_path)
    assert len(template) > 400  # the extraction really ran over the code and the templates
    problems = []
    for language in CHINESE:
        with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, message.context)
            strings = found.string if found is not None else None
            if isinstance(strings, tuple):
                missing = not all(strings)
            else:
                missing = not strings
            if found is None or missing:
                problems.append(f"{language}: no translation for {message.id!r} ({message.locations[:1]})")
            elif found.fuzzy:
                problems.append(f"{language}: fuzzy translation for {message.id!r}")
    assert problems == [], "\n".join(problems) + "\n(run the update cycle in queue_app/translations/README.md)"


class Recorder:
    """Flask-Babel's translations for one locale, noting each message the catalog does not have."""

    def __init__(self, inner, locale, missing):
        self._inner, self._locale, self._missing = inner, locale, missing

    def _check(self, key, shown):
        if self._locale != "en" and key not in self._inner._catalog:
            self._missing.add((self._locale, shown))

    def ugettext(self, message):
        self._check(message, message)
        return self._inner.ugettext(message)

    gettext = ugettext

    def ungettext(self, singular, plural, n):
        self._check((singular, 0), singular)
        return self._inner.ungettext(singular, plural, n)

    ngettext = ungettext

    def upgettext(self, context, message):
        self._check(f"{context}\x04{message}", message)
        return self._inner.upgettext(context, message)

    pgettext = upgettext

    def unpgettext(self, context, singular, plural, n):
        self._check((f"{context}\x04{singular}", 0), singular)
        return self._inner.unpgettext(context, singular, plural, n)

    npgettext = unpgettext

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def missing_messages(monkeypatch):
    missing: set = set()
    original = flask_babel.Domain.get_translations

    def recording(self):
        return Recorder(original(self), str(flask_babel.get_locale()), missing)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", recording)
    return missing


class VisibleText(html.parser.HTMLParser):
    """What a person sees or hears from a page: text outside scripts and styles, the names and
    hints in attributes, and the strings the page's scripts will show (its page-data JSON)."""

    ATTRIBUTES = ("aria-label", "placeholder", "title", "alt")

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._page_data = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "style", "code", "kbd", "samp"):  # code: commands and addresses to type
            self._skip += 1
            self._page_data = attributes.get("id") == "page-data"
        for name in self.ATTRIBUTES:
            if attributes.get(name):
                self.texts.append(attributes[name])
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.texts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "kbd", "samp"):
            self._skip -= 1
            self._page_data = False

    def handle_data(self, data):
        if self._page_data:
            self.texts.extend(strings_in(json.loads(data)))
        elif not self._skip and data.strip():
            self.texts.append(data.strip())


# The parts of a page's page-data that its script shows or reads out; the rest is data (tokens,
# statuses, language tags, the display's announcement in the branch's own language).
SHOWN_KEYS = ("text", "messages", "picker", "estimates", "state_labels", "fields")


def strings_in(value, shown=False) -> list[str]:
    if isinstance(value, str):
        return [value] if shown else []
    if isinstance(value, dict):
        return [s for key, item in value.items() if not key.endswith("url")
                for s in strings_in(item, shown or key in SHOWN_KEYS)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item, shown)]
    return []


# Words that are the same in every language here: names of things, codes, units.
NOT_ENGLISH = re.compile(
    r"https?://\S+|[\w.+-]+@[\w.-]+|\b[A-Z]{1,2}\d{3}\b|\b(?:QR|OK|ID|NPS|UTC|JSON|CSV|CRM|HTTPS|Webhook|English|Asia/Taipei|"
    r"JavaScript|IANA|TOKEN|Europe/Berlin|Asia/Shanghai|taipei-main|shanghai-main|min|s|h|am|pm|AM|PM)\b|\{[a-z_]+\}|%\([a-z_]+\)s|"
    # Values typed in settings fields in their own syntax: weekday keys of opening hours, segment keys.
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)\b|\b(?:core|at_risk_valuable|loyal_regular|occasional) \d+|"
    # Language codes, as typed in the branch's announcement languages.
    r"\b(?:en|zh_Hant|zh_Hans)\b")


def english_words(text: str, data: list[str]) -> list[str]:
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    text = NOT_ENGLISH.sub(" ", text)
    return re.findall(r"[A-Za-z]{2,}(?:[ '-][A-Za-z]{2,})*", text)


@pytest.fixture
def pages(app, client, api, seeded, session):
    """Every page a person uses, as (name, path, who) to open in each language."""
    ticket = api.issue("A")
    add_appointment(app, "K2Q3M7X9", now_minute() + timedelta(days=2))
    counter = session.scalar(select(Counter).where(Counter.name == "Counter 1"))
    service = session.scalar(select(Service).where(Service.code == "A"))
    staff = session.scalar(select(Staff).where(Staff.email == "staff1@demo.test"))
    return [
        ("home", "/", None),
        ("kiosk", "/kiosk/demo", "kiosk"),
        ("kiosk unregistered", "/kiosk/demo", None),
        ("tracking", f"/t/{ticket['token']}", None),
        ("ticket missing", "/t/no-such-ticket", None),
        ("booking", "/b/demo", None),
        ("booking management", "/a/K2Q3M7X9-manage-token", None),
        ("booking missing", "/a/no-such-booking", None),
        ("display", "/display/demo", None),
        ("waits widget", "/embed/waits/demo", None),
        ("join from home, not allowed", "/j/demo", None),  # the page itself: tests/tickets/test_join_from_home.py
        ("I'm here, not today's code", "/here/demo/XXXXXX", None),
        ("login", "/login", None),
        ("staff counters", "/staff", "staff1@demo.test"),
        ("staff console", f"/staff/counters/{counter.id}", "staff1@demo.test"),
        ("manage", "/manage/", "manager@demo.test"),
        ("manage counters", "/manage/branches/demo/counters", "manager@demo.test"),
        ("manage services", "/manage/branches/demo/services", "admin@demo.test"),
        ("manage service", f"/manage/services/{service.id}/edit", "admin@demo.test"),
        ("manage new branch", "/manage/branches/new", "admin@demo.test"),
        ("manage branch", "/manage/branches/demo/edit", "admin@demo.test"),
        ("manage staff", "/manage/staff", "admin@demo.test"),
        ("manage staff member", f"/manage/staff/{staff.id}/edit", "admin@demo.test"),
        ("manage customers", "/manage/branches/demo/customers", "manager@demo.test"),
        ("manage kiosks", "/manage/branches/demo/kiosks", "manager@demo.test"),
    ]


def open_as(app, seeded, who):
    client = app.test_client()
    if who == "kiosk":
        assert client.get(f"/kiosk/demo?device={seeded['kiosk_token']}").status_code == 302
    elif who:
        login_as(client, who)
    return client


def data_values(session) -> list[str]:
    """The branch's own names (data, not interface text), left out of the English-word check."""
    values = [name for (name,) in session.execute(select(Branch.name))]
    values += [name for (name,) in session.execute(select(Service.name))]
    values += [name for (name,) in session.execute(select(Counter.name))]
    values += [name for (name,) in session.execute(select(Staff.name))]
    values += [email for (email,) in session.execute(select(Staff.email))]
    values += [name for (name,) in session.execute(select(KioskDevice.name))]
    values += [item.strip() for (items,) in session.execute(select(Service.checklist)) for item in (items or "").splitlines()]
    values += ["Chen Mei-Ling", "Demo", "demo"]
    return [v for v in values if v]


@pytest.mark.parametrize("language", CHINESE)
def test_every_page_finds_each_of_its_messages_in_the_catalog_and_shows_no_english(
        app, seeded, session, pages, missing_messages, language):
    data = data_values(session)
    english = []
    clients = {}
    for name, path, who in pages:
        if who not in clients:
            clients[who] = open_as(app, seeded, who)
        client = clients[who]
        separator = "&" if "?" in path else "?"
        response = client.get(f"{path}{separator}lang={language}")
        assert response.status_code in (200, 401, 403, 404), (name, response.status_code)
        body = response.data.decode()
        assert f'lang="{language.replace("_", "-")}"' in body, name
        parser = VisibleText()
        parser.feed(body)
        for text in parser.texts:
            words = english_words(text, data)
            if words:
                english.append(f"{name}: {words} in {text[:120]!r}")
    assert sorted(missing_messages) == []
    assert english == [], "\n".join(english)


@pytest.mark.parametrize("language", CHINESE)
def test_kiosk_answers_and_printed_ticket_find_their_messages(app, seeded, missing_messages, language):
    client = open_as(app, seeded, "kiosk")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/kiosk/demo").data.decode()).group(1)
    issued = client.post(f"/kiosk/demo/tickets?lang={language}", json={"service": "A"}, headers={"X-CSRFToken": csrf})
    assert issued.status_code == 201, issued.json
    refused = client.post(f"/kiosk/demo/check-in?lang={language}", json={"code": "NOSUCH23"},
                          headers={"X-CSRFToken": csrf})
    assert refused.status_code >= 400
    assert sorted(missing_messages) == []
    assert not re.search(r"[A-Za-z]{3,}", refused.json["error"]["message"])


ACCEPT_LANGUAGE = [
    ("zh-TW", "zh_Hant"), ("zh-HK", "zh_Hant"), ("zh-MO", "zh_Hant"), ("zh-Hant", "zh_Hant"),
    ("zh-Hant-HK,zh;q=0.8", "zh_Hant"), ("zh-CN", "zh_Hans"), ("zh-SG", "zh_Hans"), ("zh", "zh_Hans"),
    ("zh-Hans-CN", "zh_Hans"), ("en-US,zh-TW;q=0.5", "en"), ("fr-FR", "en"), ("de,zh-HK;q=0.7", "zh_Hant"),
]


def test_accept_language_picks_the_script_by_region(client, seeded):
    for header, expected in ACCEPT_LANGUAGE:
        page = client.get("/b/demo", headers={"Accept-Language": header}).data.decode()
        assert f'<html lang="{expected.replace("_", "-")}"' in page, header
        book = {"en": "Book a visit", "zh_Hant": "預約", "zh_Hans": "预约"}[expected]
        assert book in page, header
        # ?lang= wins over the header (the language switch).
        assert '<html lang="en"' in client.get("/b/demo?lang=en", headers={"Accept-Language": header}).data.decode()


SIGNS = {  # words that exist in one script only
    "en": ("Your number", "Booking confirmed"),
    "zh_Hant": ("您的號碼", "預約確認"),
    "zh_Hans": ("您的号码", "预约确认"),
}


@pytest.mark.parametrize("language", ("en", "zh_Hant", "zh_Hans"))
def test_a_page_a_booking_mail_and_a_printed_ticket_in_each_language(app, api, seeded, session, language):
    # The page (the kiosk's ticket screen texts).
    client = open_as(app, seeded, "kiosk")
    page = client.get(f"/kiosk/demo?lang={language}").data.decode()
    assert SIGNS[language][0] in page
    # The printed ticket: the print object the kiosk hands to its printer.
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    ticket = client.post(f"/kiosk/demo/tickets?lang={language}", json={"service": "A"},
                         headers={"X-CSRFToken": csrf}).json
    printed = ticket["print"]
    assert printed["caption"] == SIGNS[language][0] and printed["language"] == language
    # The time in the locale's format, on the printed ticket as on the screen.
    time_pattern = r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d" if language == "en" else r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d"
    assert re.fullmatch(time_pattern, printed["time"]) and ticket["issued_text"] == printed["time"]
    others = [SIGNS[other][0] for other in SIGNS if other != language]
    assert not any(other in json.dumps(printed, ensure_ascii=False) for other in others)
    # The mail: the booking remembers the page's language, and later mail uses it.
    slot = first_free_slot(api)
    booked = api.call("POST", "/branches/demo/appointments", json={
        "service": "B", "start": slot["start"], "name": "Lin", "email": "lin@example.test", "language": language})
    assert booked.status_code == 201, booked.json
    appointment = session.scalar(select(Appointment).where(Appointment.check_in_code == booked.json["check_in_code"]))
    assert appointment.language == language
    confirmation = session.scalar(select(Notification).where(Notification.appointment_id == appointment.id))
    rendered = notify.render(confirmation, appointment, datetime.now(timezone.utc))
    assert SIGNS[language][1] in rendered.subject
    assert not any(SIGNS[other][1] in rendered.subject + rendered.body for other in SIGNS if other != language)


GLOSSARY = json.loads((TRANSLATIONS / "glossary.json").read_text(encoding="utf-8"))
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|\{\w+\}")


def glossary_problems(language: str, catalog) -> list[str]:
    """Where a catalog strays from the glossary: an msgid naming a term whose msgstr lacks the
    glossary's word, or any msgstr holding a variant the glossary forbids."""
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        english = PLACEHOLDER.sub("", " ".join(ids))  # "%(counter)s" is data, not the word counter
        for term in GLOSSARY["terms"]:
            required = term.get("required", {language: term[language]})
            wanted = required[language] if required else None
            mentioned = re.search(term["match"], english, re.IGNORECASE)
            for string in strings:
                if wanted and mentioned and wanted not in string:
                    problems.append(f"{language}: {term['en']!r} is {wanted}: {ids[0][:70]!r} -> {string[:70]!r}")
                problems += [f"{language}: {bad} (use {term[language]}): {string[:70]!r}"
                             for bad in term["forbidden"][language] if bad in string]
    return problems


@pytest.mark.parametrize("language", CHINESE)
def test_both_catalogs_use_the_glossary_terms(language):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    assert len(GLOSSARY["terms"]) >= 7
    assert glossary_problems(language, catalog) == []


def test_the_glossary_check_catches_a_variant_and_a_missing_term():
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale="zh_Hant")
    catalog.add("Enter your check-in code at the kiosk.", "請在自助報到機輸入報到代碼。")
    catalog.add("Go to %(counter)s", "請到 %(counter)s")  # a placeholder is not the term
    catalog.add("Counters", "窗口")
    problems = glossary_problems("zh_Hant", catalog)
    assert any("自助報到機" in p for p in problems) and any("報到代碼" in p for p in problems)
    assert any("'counter' is 櫃檯" in p for p in problems)
    assert not any("請到" in p for p in problems)
