"""A failing test's report must not print a password: pytest's long tracebacks print the
arguments of every frame, psycopg's ``conninfo`` (the test server's superuser password)
among them. The project's pytest settings keep reports to file, line and exception."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Test-Passw0rd-x9"

# The password comes from the environment, as in the test kit: only frame arguments can show it.
FAILING_TEST = """
import os

import psycopg


def test_connects_to_nothing():
    conninfo = "host=127.0.0.1 port=9 user=postgres connect_timeout=2 password=" + os.environ["LEAK_PASSWORD"]
    psycopg.connect(conninfo)
"""


def test_a_failed_connection_in_a_test_does_not_print_its_password(tmp_path: Path) -> None:
    test_file = tmp_path / "test_leak.py"
    test_file.write_text(FAILING_TEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        env={**os.environ, "LEAK_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-2000:]  # it failed, and said so
    assert "OperationalError" in output
    assert PASSWORD not in output
