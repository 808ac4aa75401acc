"""Hatch build hook: compile the translation catalogs (.po -> .mo) whenever the package is built.

`pip install -e .`, `pip install .` and wheel builds all run it, so an install never depends on
compiled binaries being committed: the .po files are the only source. The .mo files are written
next to their .po (an editable install reads them there) and force-included in a built wheel
(they are git-ignored, and hatch leaves ignored files out by default).

tests/conftest.py calls `compile_catalogs` too, so the tests never run against stale catalogs.
"""
import io
import os
import tempfile
from pathlib import Path

TRANSLATIONS = Path(__file__).resolve().parent / "queue_app" / "translations"


def compile_catalogs(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every `<lang>/LC_MESSAGES/messages.po` under `directory`; return the .mo paths.

    Fuzzy entries are left out (as `pybabel compile` does), so a guessed translation never ships.
    A catalog with a broken placeholder (`%(name)s` missing or misspelt) stops the build. A .mo
    whose bytes would not change is not rewritten; a changed one is replaced atomically, so a
    running server never reads half a file.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        problems = [f"{po_path}: {message.id!r}: {error}"
                    for message, errors in catalog.check() for error in errors]
        if problems:
            raise RuntimeError("translation catalog errors:\n" + "\n".join(problems))
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.read_bytes() != buffer.getvalue():
            handle, temporary = tempfile.mkstemp(dir=mo_path.parent, prefix=".messages-", suffix=".mo")
            with os.fdopen(handle, "wb") as out:
                out.write(buffer.getvalue())
            os.replace(temporary, mo_path)
        compiled.append(mo_path)
    return compiled


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests without hatchling: only compile_catalogs is needed
    BuildHookInterface = object


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        compiled = compile_catalogs(Path(self.root) / "queue_app" / "translations")
        if self.target_name == "wheel" and version == "standard":
            root = Path(self.root)
            for mo_path in compiled:
                relative = mo_path.relative_to(root).as_posix()
                build_data["force_include"][str(mo_path)] = relative
