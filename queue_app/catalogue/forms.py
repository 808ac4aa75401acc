import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FloatField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional

from queue_app.catalogue.models import WEEKDAYS
from queue_app.catalogue.operations import COUNTER_NAME_MAX, MIN_PASSWORD, NAME_LANGUAGES, SERVICE_NAME_MAX
from queue_app.core.languages import LANGUAGE_NAMES
from queue_app.web.form_fields import COUNTER_STATE_LABELS, ROLE_LABELS, MultiCheckboxField, choices, strip_spaces
from queue_app.web.input_rules import StrictText

# Manager and admin forms. The domain (queue_app/catalogue/operations.py) does the real validation;
# these only turn form text into the values it expects and catch what a browser form can get wrong.


def _clean_lines(value):
    """Textareas post CRLF; store plain lines without trailing blanks."""
    if not isinstance(value, str):
        return value
    return "\n".join(line.rstrip() for line in value.splitlines()).strip()


def parse_opening_hours(text: str) -> dict:
    """`mon 09:00-12:30, 13:30-17:00` per line -> {"mon": [["09:00", "12:30"], ["13:30", "17:00"]]}.

    Only the layout is checked here; the domain checks the times themselves (format, order, overlap).
    A day left out, or written as `sun closed`, is a closed day.
    """
    hours = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z]+):?\s*(.*)", line)
        day = match.group(1).lower() if match else ""
        if day not in WEEKDAYS:
            raise ValueError(_("Line %(number)d: start with a weekday (%(days)s), e.g. mon 09:00-17:00.",
                               number=number, days=", ".join(WEEKDAYS)))
        if day in hours:
            raise ValueError(_("Line %(number)d: %(day)s is given twice.", number=number, day=day))
        rest = match.group(2).strip()
        intervals = []
        if rest.lower() != "closed":
            for part in filter(None, (p.strip() for p in rest.split(","))):
                opens, dash, closes = part.partition("-")
                if not dash:
                    raise ValueError(_("Line %(number)d: write each interval as HH:MM-HH:MM, e.g. 09:00-12:30.",
                                       number=number))
                intervals.append([opens.strip(), closes.strip()])
        if intervals:
            hours[day] = intervals
    return hours


def format_opening_hours(hours: dict) -> str:
    lines = []
    for day in WEEKDAYS:
        if hours.get(day):
            lines.append(f"{day} " + ", ".join(f"{opens}-{closes}" for opens, closes in hours[day]))
    return "\n".join(lines)


class OpeningHoursField(TextAreaField):
    """Text, one line per weekday; `data` is the dict the domain expects."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]  # show what was typed, even when it did not parse
        return format_opening_hours(self.data or {})

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = parse_opening_hours(valuelist[0])


class DateListField(TextAreaField):
    """ISO dates, one per line (commas work too); `data` is a list of strings the domain checks."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "\n".join(self.data or [])

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = [d for d in re.split(r"[\s,]+", valuelist[0]) if d]


# Language codes as typed (any case, "-" or "_") to the shipped code.
_LANGUAGE_SPELLINGS = {code.lower().replace("_", "-"): code for code in LANGUAGE_NAMES}


class LanguageListField(StringField):
    """Language codes in order, e.g. "zh_Hant, en"; `data` is the list the domain checks (zh-hant reads as zh_Hant)."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return ", ".join(self.data or [])

    def process_formdata(self, valuelist):
        if valuelist:
            codes = [c for c in re.split(r"[\s,]+", valuelist[0]) if c]
            self.data = [_LANGUAGE_SPELLINGS.get(c.lower().replace("_", "-"), c) for c in codes]


class BranchForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), StrictText(max=200)], filters=[strip_spaces])
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), StrictText(max=64)], filters=[strip_spaces],
                           description=_l("IANA name, e.g. Asia/Taipei or Europe/Berlin."))
    opening_hours = OpeningHoursField(
        _l("Opening hours"), default=dict, render_kw={"rows": 7},
        description=_l("One line per weekday, e.g. mon 09:00-12:30, 13:30-17:00. Leave out closed days."))
    closed_dates = DateListField(_l("Closed dates"), default=list, render_kw={"rows": 3},
                                 description=_l("One date per line, e.g. 2025-12-25."))
    allow_remote_tickets = BooleanField(_l("Allow tickets from phones, not only from kiosks"))
    set_off_margin_minutes = IntegerField(
        _l("Set-off margin (minutes)"), default=5,
        validators=[Optional(), NumberRange(min=0, max=60, message=_l("From 0 to 60 minutes."))],
        render_kw={"inputmode": "numeric"},
        description=_l("Customers who joined from home are told to set off when their turn may come within their "
                       "trip plus this. More: fewer arrive after their turn; less: shorter waits in the lobby."))
    # Checked and stored as E.164 by the domain (catalogue, via identity.normalise_phone).
    phone = StringField(_l("Phone"), validators=[Optional(), StrictText(max=32)], filters=[strip_spaces],
                        description=_l("Told to customers who can no longer change a booking online, "
                                       "e.g. +886 2 2345 6789. Leave empty for none."))
    announcement_languages = LanguageListField(
        _l("Announcement languages"), default=list,
        description=_l("The lobby display announces each call in these languages in turn, e.g. zh_Hant, en "
                       "(en English, zh_Hant 繁體中文, zh_Hans 简体中文). Leave empty for the display's own language."))
    # Where the branch is, for the branch list's "distance from me"; both or neither (the domain checks).
    latitude = FloatField(
        _l("Latitude"), validators=[Optional(), NumberRange(min=-90, max=90, message=_l("From -90 to 90 degrees."))],
        render_kw={"inputmode": "decimal"},
        description=_l("Decimal degrees, e.g. 25.0330 (north is positive). Leave both empty for none."))
    longitude = FloatField(
        _l("Longitude"),
        validators=[Optional(), NumberRange(min=-180, max=180, message=_l("From -180 to 180 degrees."))],
        render_kw={"inputmode": "decimal"},
        description=_l("Decimal degrees, e.g. 121.5654 (east is positive)."))
    submit = SubmitField(_l("Save"))

    def domain_fields(self) -> dict:
        return {"name": self.name.data, "timezone": self.timezone.data,
                "latitude": self.latitude.data, "longitude": self.longitude.data,
                "opening_hours": self.opening_hours.data, "closed_dates": self.closed_dates.data,
                "allow_remote_tickets": self.allow_remote_tickets.data, "phone": self.phone.data or None,
                "announcement_languages": self.announcement_languages.data or [],
                # Left empty: the setting stays as it is (5 for a new branch).
                **({} if self.set_off_margin_minutes.data is None else
                   {"set_off_margin_minutes": self.set_off_margin_minutes.data})}


class NewBranchForm(BranchForm):
    slug = StringField(_l("Slug"), validators=[DataRequired(), StrictText(max=63)], filters=[strip_spaces],
                       description=_l("Used in links: lower-case letters, digits and dashes, e.g. taipei-main."))


# Language names as a reader of the page calls them (the switcher shows each in its own language).
_LANGUAGE_LABELS = {"en": _l("English"), "zh_Hant": _l("Traditional Chinese"), "zh_Hans": _l("Simplified Chinese")}


def _names_fields(max_length: int) -> type:
    """One optional input per language (name_en, name_zh_Hant, ...) for Service.names / Counter.names."""
    def field(language):
        return StringField(_l("Name in %(language)s", language=_LANGUAGE_LABELS[language]),
                           validators=[Optional(), StrictText(max=max_length)], filters=[strip_spaces],
                           description=_l("What visitors using this language see; empty shows the name above."))

    class NamesFields:
        def names_data(self) -> dict:
            return {language: self[f"name_{language}"].data or "" for language in NAME_LANGUAGES}

        def fill_names(self, names: dict | None) -> None:
            for language in NAME_LANGUAGES:
                self[f"name_{language}"].data = (names or {}).get(language, "")

    for language in NAME_LANGUAGES:
        setattr(NamesFields, f"name_{language}", field(language))
    return NamesFields


ServiceNamesFields = _names_fields(SERVICE_NAME_MAX)
CounterNamesFields = _names_fields(COUNTER_NAME_MAX)
NAME_FIELD_KEYS = tuple(f"name_{language}" for language in NAME_LANGUAGES)  # in the order pages show them


class ServiceForm(ServiceNamesFields, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), StrictText(max=200)], filters=[strip_spaces])
    expected_minutes = IntegerField(_l("Expected minutes per customer"), default=10, validators=[InputRequired()])
    checklist = TextAreaField(_l("Checklist"), validators=[StrictText(max=5000)], filters=[_clean_lines],
                              render_kw={"rows": 4},
                              description=_l("One item per line; staff see it when they call the ticket."))
    submit = SubmitField(_l("Save"))

    def domain_fields(self) -> dict:
        return {"name": self.name.data, "names": self.names_data(), "expected_minutes": self.expected_minutes.data,
                "checklist": self.checklist.data}


class NewServiceForm(ServiceForm):
    code = StringField(_l("Code"), validators=[DataRequired(), StrictText(max=2)], filters=[strip_spaces],
                       description=_l("One or two letters, the ticket prefix (A gives A001)."))
    submit = SubmitField(_l("Add service"))


class ServiceEditForm(ServiceForm):
    walk_in_enabled = BooleanField(_l("Walk-in tickets"))
    booking_enabled = BooleanField(_l("Bookings"))
    active = BooleanField(_l("Active"))

    def domain_fields(self) -> dict:
        return {**super().domain_fields(), "walk_in_enabled": self.walk_in_enabled.data,
                "booking_enabled": self.booking_enabled.data, "active": self.active.data}


class CounterForm(CounterNamesFields, FlaskForm):
    """State and services of one counter; `services.choices` is set by the view (the branch's services).
    The names per language are an admin's edit (like renaming): the page shows them to admins only."""

    state = SelectField(_l("State"), choices=choices(COUNTER_STATE_LABELS))
    services = MultiCheckboxField(_l("Services"))
    submit = SubmitField(_l("Save"))


class NewCounterForm(CounterNamesFields, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), StrictText(max=64)], filters=[strip_spaces])
    services = MultiCheckboxField(_l("Services"))
    submit = SubmitField(_l("Add counter"))


class StaffForm(FlaskForm):
    """A new staff account; `branches.choices` is set by the view (all branches)."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), StrictText(max=254)], filters=[strip_spaces])
    name = StringField(_l("Name"), validators=[StrictText(max=200)], filters=[strip_spaces])
    role = SelectField(_l("Role"), choices=choices(ROLE_LABELS))
    branches = SelectMultipleField(_l("Branches"))
    password = PasswordField(_l("Password"), validators=[DataRequired(), StrictText(max=1024)],
                             description=_l("At least %(count)d characters.", count=MIN_PASSWORD))
    submit = SubmitField(_l("Add staff"))


class StaffEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[StrictText(max=200)], filters=[strip_spaces])
    role = SelectField(_l("Role"), choices=choices(ROLE_LABELS))
    branches = SelectMultipleField(_l("Branches"))
    active = BooleanField(_l("Active (may sign in)"))
    password = PasswordField(_l("New password"), validators=[Optional(), StrictText(max=1024)],
                             description=_l("Leave empty to keep the current password."))
    submit = SubmitField(_l("Save"))

    def domain_fields(self) -> dict:
        fields = {"name": self.name.data, "role": self.role.data, "branches": self.branches.data,
                  "active": self.active.data}
        if self.password.data:
            fields["password"] = self.password.data
        return fields
