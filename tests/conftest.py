"""Fixtures shared by every test.

``postgres_server`` (one real PostgreSQL server for the session), ``neon_emulator`` and
``kube_apiserver`` come from tenantdb's own pytest plugin (``tenantdb.testing.pytest_plugin``,
the ``pytest11`` entry point), exactly as a platform team's suite gets them.
"""

from __future__ import annotations

import faulthandler
import sys

import pytest


def pytest_unconfigure(config: pytest.Config) -> None:
    # The interpreter's exit joins every executor worker; one left blocked would hang the run
    # long after the summary. Fail within a minute instead, with every thread's stack printed.
    faulthandler.dump_traceback_later(60, exit=True, file=sys.__stderr__)
