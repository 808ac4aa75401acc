"""Schemathesis against the served OpenAPI document of a real server: at least 1,000 generated
requests, no server error (5xx), every response matching the documented schema.

The CLI is driven against `queue-app run` on a seeded SQLite file, once with a valid token for
each kind of caller (kiosk, staff, manager, admin), with a fixed seed and a bounded number of
examples per operation, so CI is repeatable: about 8,000 requests in all, most of them the
coverage phase's boundary values; the random phase (5 examples an operation and caller) costs
the most time per request.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests
from servers import AppServer, server_env

ALL_PHASES = "examples,coverage,fuzzing,stateful"


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
        # Admin last: its fuzzed PATCH /staff may change the others' passwords. The coverage phase
        # (boundary values for every parameter, about 3,000 requests a caller) runs as the manager
        # and the admin, who reach every operation the kiosk and staff reach; the kiosk and staff
        # get the random and stateful phases, for their own permission paths.
        for email, phases in (("kiosk", "fuzzing,stateful"), ("staff1@demo.test", "fuzzing,stateful"),
                              ("manager@demo.test", ALL_PHASES), ("admin@demo.test", ALL_PHASES)):
            token = kiosk_token if email == "kiosk" else requests.post(
                base + "/api/v1/auth/token", timeout=10,
                json={"email": email, "password": "demo-password"}).json()["token"]
            run = subprocess.run(
                [cli, "run", base + "/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
                 "--checks", "not_a_server_error,response_schema_conformance",
                 "--max-examples", "5", "--seed", "20261127", "--no-color", "--phases", phases],
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
