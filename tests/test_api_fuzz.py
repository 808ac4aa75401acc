"""Schemathesis against the served OpenAPI document of a real server: at least 1,000 generated
requests, no server error (5xx), every response matching the documented schema.

The CLI is driven against `queue-app run` on a seeded SQLite file, with an admin token, a fixed
seed and a bounded number of examples per operation, so CI is repeatable.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from test_scaleout import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_generated_requests_get_no_server_error_and_match_the_schema(db_path, tmp_path):
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or shutil.which("schemathesis")
    assert cli, "schemathesis is in the test extra: python -m pip install -e '.[test]'"
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{db_path}", "QUEUE_APP_SECRET_KEY": "fuzz",
           "QUEUE_APP_RATELIMIT_ENABLED": "0", "QUEUE_APP_RUN_SCHEDULER": "0"}
    subprocess.run([sys.executable, "-m", "queue_app.cli", "seed-demo"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "queue_app.cli", "run", "--port", str(port)],
                                  env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(base + "/api/v1/branches", server)
            token = requests.post(base + "/api/v1/auth/token", timeout=10,
                                  json={"email": "admin@demo.test", "password": "demo-password"}).json()["token"]
            run = subprocess.run(
                [cli, "run", base + "/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
                 "--checks", "not_a_server_error,response_schema_conformance",
                 "--max-examples", "25", "--seed", "20261127", "--no-color"],
                capture_output=True, text=True, timeout=900, cwd=tmp_path,
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    report = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", report)
    assert run.returncode == 0, report[-4000:]
    assert generated and int(generated.group(1)) >= 1000, report[-2000:]
    assert "Traceback" not in (tmp_path / "server.log").read_text()
