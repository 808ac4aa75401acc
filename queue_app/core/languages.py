"""What the live pages (kiosk, lobby display, tracking page, staff console) share: languages."""
from flask import current_app, request

# The languages that ship, each named in itself so a visitor can find their own.
LANGUAGE_NAMES = {"en": "English", "zh_Hant": "繁體中文", "zh_Hans": "简体中文"}
# BCP 47 tags for the browser's speech synthesis and clock formatting.
SPEECH_LANGUAGES = {"en": "en-US", "zh_Hant": "zh-TW", "zh_Hans": "zh-CN"}


def _known(code: str | None) -> str | None:
    return code if code in LANGUAGE_NAMES and code in current_app.config["LANGUAGES"] else None


def branch_locale(branch) -> str:
    """The branch's own language (what its lobby hears), tolerating region tags like zh-TW."""
    code = (branch.language or "en").replace("-", "_")
    if code.lower().startswith("zh") and not _known(code):
        # Region tags map to scripts by hand: Werkzeug and Babel get Chinese wrong (FIELD-NOTES).
        code = "zh_Hant" if code.lower()[3:] in ("tw", "hk", "mo", "hant") else "zh_Hans"
    return _known(code) or "en"


def requested_locale(default: str) -> str:
    """`?lang=` when it names a shipped language, else `default` (a device's branch language)."""
    return _known(request.args.get("lang")) or default


def speech_language(locale: str) -> str:
    return SPEECH_LANGUAGES.get(locale, "en-US")
