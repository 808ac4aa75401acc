"""Texts of messages sent without a request (mail and SMS from the timed jobs), from the same
catalogs as the pages (queue_app/translations; Flask-Babel reads them for requests).

Flask-Babel picks a language per request; a scheduler thread has none, and a message is written in
the language its customer chose (the booking's or the ticket's `language`), not the server's. So
the sender asks for a language by name. Messages are marked with `N_` where they are defined, so
`pybabel extract` finds them, and translated here when the message is written.
"""
from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("en", "zh_Hant", "zh_Hans")


def N_(message: str) -> str:
    """Marks a message for extraction (babel's default `N_` keyword); translated later by `gettext`."""
    return message


@lru_cache(maxsize=None)
def _catalog(language: str):
    if language == "en":
        return NullTranslations()  # English is the source language
    return Translations.load(str(TRANSLATIONS), [language], "messages")


def gettext(language: str, message: str, **values) -> str:
    """`message` in `language` (English when the catalog lacks it), formatted with `values`."""
    translated = _catalog(language if language in LANGUAGES else "en").gettext(message)
    return translated % values if values else translated
