"""MkDocs hook: the command-line reference page, generated from `queue-app --help`.

`reference/cli.md` holds the marker `<!-- cli-reference -->`; this hook replaces it with the help text
of `queue-app` and of each of its commands, as `queue-app COMMAND --help` prints it. The command is
found through the installed `queue-app` console script, so the package must be installed
(`python -m pip install -e '.[docs]'`). mkdocs-click is not used: it lists only the commands attached
to the click group itself, and `queue-app` is a FlaskGroup whose commands are registered by the
app's features when the app is created.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

MARKER = "<!-- cli-reference -->"
PAGE = "reference/cli.md"
WIDTH = 100


def _help(command, args: list[str]) -> str:
    from click.testing import CliRunner

    runner = CliRunner()
    env = {"QUEUE_APP_ENV": "development", "COLUMNS": str(WIDTH)}
    result = runner.invoke(command, [*args, "--help"], prog_name="queue-app", env=env, terminal_width=WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"queue-app {' '.join(args)} --help failed:\n{result.output}\n{result.exception!r}")
    return result.output.rstrip()


def _reference() -> str:
    (script,) = entry_points(group="console_scripts", name="queue-app")
    main = script.load()
    sections = ["## queue-app", "", "```text", _help(main, []), "```", ""]
    ctx = main.make_context("queue-app", ["--help"], resilient_parsing=True)
    # The app registers most commands; a Flask CLI group that cannot create the app only prints the
    # error and lists its own few. Loading it here makes such an error fail the build instead.
    from flask.cli import ScriptInfo

    with ctx:  # under a click context the app starts no timed jobs (as for every CLI command)
        ctx.ensure_object(ScriptInfo).load_app()
        names = main.list_commands(ctx)
    for name in names:
        sections += [f"## queue-app {name}", "", "```text", _help(main, [name]), "```", ""]
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise RuntimeError(f"{PAGE} lost its {MARKER} marker")
    os.environ.setdefault("QUEUE_APP_ENV", "development")
    os.environ["QUEUE_APP_RUN_SCHEDULER"] = "0"  # building the docs never runs the timed jobs
    return markdown.replace(MARKER, _reference())
