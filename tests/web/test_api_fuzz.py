"""Schemathesis against the served OpenAPI document of a real server: at least 1,000 generated
requests, no server error (5xx), every response matching the documented schema.

The CLI is driven against `queue-app run` on a seeded SQLite file, once with a valid token for
each kind of caller (kiosk, staff, manager, admin), with a fixed seed and a bounded number of
examples per operation, so CI is repeatable.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests
from servers import AppServer, server_env


@pytest.mark.slow
def test_generated_requests_get_no_server_error_and_match_the_schema(db_path, seeded, tmp_path):
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or shutil.which("schemathesis")
    assert cli, "schemathesis is in the test extra: python -m pip install -e '.[test]'"
    server = AppServer(server_env(f"sqlite:///{db_path}"), tmp_path / "server.log")
    base = server.base
    server.start()
    try:
        kiosk_token = seeded["kiosk_token"]
        reports = []
        # Admin last: its fuzzed PATCH /staff may change the others' passwords.
        for email in ("kiosk", "staff1@demo.test", "manager@demo.test", "admin@demo.test"):
            token = kiosk_token if email == "kiosk" else requests.post(
                base + "/api/v1/auth/token", timeout=10,
                json={"email": email, "password": "demo-password"}).json()["token"]
            run = subprocess.run(
                [cli, "run", base + "/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
                 "--checks", "not_a_server_error,response_schema_conformance",
                 "--max-examples", "10", "--seed", "20261127", "--no-color"],
                capture_output=True, text=True, timeout=900, cwd=tmp_path,
            )
            reports.append((email, run.returncode, run.stdout + run.stderr))
    finally:
        server.stop()
    total = 0
    for email, returncode, report in reports:
        assert returncode == 0, f"as {email}:\n" + report[-4000:]
        generated = re.search(r"(\d+) generated", report)
        assert generated, report[-2000:]
        total += int(generated.group(1))
    assert total >= 1000
    assert "Traceback" not in (tmp_path / "server.log").read_text()
