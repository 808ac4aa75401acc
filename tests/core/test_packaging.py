"""The built wheel carries what a fresh install needs: templates, migrations, static files."""
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_includes_templates_migrations_and_static_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("queue_app-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*.html"):
        assert f"queue_app/templates/{template.relative_to(ROOT / 'templates').as_posix()}" in names
    assert "queue_app/migrations/env.py" in names
    assert "queue_app/migrations/versions/0001_initial_schema.py" in names
    assert "queue_app/static/vendor/redoc.standalone.js" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    # The lobby kiosk client ships in the same wheel, with its own command.
    assert {"kiosk/__init__.py", "kiosk/cli.py", "kiosk/printing.py", "kiosk/bridge.py"} <= names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "queue-kiosk = kiosk.cli:main" in entry_points


def test_a_build_compiles_the_translation_catalogs_from_the_po_files(tmp_path):
    """No .mo file in the source (they are git-ignored): the wheel still carries compiled catalogs."""
    from babel.messages.mofile import read_mo

    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "instance", "__pycache__", "*.egg-info", "build", "dist", "*.mo", "artifacts"))
    assert not list(source.glob("queue_app/translations/*/LC_MESSAGES/*.mo"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("queue_app-*.whl")))
    for language, sign_in in (("zh_Hant", "員工登入"), ("zh_Hans", "员工登录")):
        catalog = read_mo(io.BytesIO(wheel.read(f"queue_app/translations/{language}/LC_MESSAGES/messages.mo")))
        assert catalog.get("Staff sign in").string == sign_in
        assert f"queue_app/translations/{language}/LC_MESSAGES/messages.po" in wheel.namelist()
