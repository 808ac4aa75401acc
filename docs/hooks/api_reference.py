"""MkDocs hook: the table of every REST endpoint, generated from the app's own OpenAPI document.

`reference/api.md` holds the marker `<!-- api-reference -->`; this hook replaces it with one row per
operation (method, path, summary), grouped by the API's tags, in the order the features register
them. The app is built in memory on a throwaway SQLite path and never served; the document comes
from the same schemas that validate requests, so the table cannot drift from the code.
"""

from __future__ import annotations

import os
import tempfile

MARKER = "<!-- api-reference -->"
PAGE = "reference/api.md"
METHODS = ("get", "post", "put", "patch", "delete")


def _spec() -> dict:
    os.environ.setdefault("QUEUE_APP_ENV", "development")
    os.environ["QUEUE_APP_RUN_SCHEDULER"] = "0"
    from queue_app import create_app
    from queue_app.web.api import api_of

    with tempfile.TemporaryDirectory(prefix="queue-docs-") as scratch:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{scratch}/docs.sqlite", "SECRET_KEY": "docs",
                          "QUEUE_APP_RUN_SCHEDULER": False})
        with app.app_context():
            return api_of(app).spec.to_dict()


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _reference() -> str:
    spec = _spec()
    tags = [t["name"] for t in spec.get("tags", [])]
    rows: dict[str, list[str]] = {tag: [] for tag in tags}
    for path, item in spec["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            summary = (operation.get("summary") or operation.get("description") or "").strip()
            first_line = summary.splitlines()[0] if summary else ""
            rows.setdefault(tag, []).append(f"| `{method.upper()}` | `{path}` | {_cell(first_line)} |")
    out = []
    for tag, lines in rows.items():
        if not lines:
            continue
        description = next((t.get("description", "") for t in spec.get("tags", []) if t["name"] == tag), "")
        out += [f"### {_cell(description) or tag}", "", "| Method | Path | What it does |", "|---|---|---|", *lines, ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise RuntimeError(f"{PAGE} lost its {MARKER} marker")
    return markdown.replace(MARKER, _reference())
