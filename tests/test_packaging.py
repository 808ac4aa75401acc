"""The built wheel carries what a fresh install needs: templates, migrations, static files."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
