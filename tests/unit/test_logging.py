"""What the operator writes to its log at each level (``configure_logging``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from tenantdb.config import Settings
from tenantdb.handlers.main import configure_logging

URL = "https://console.neon.tech/api/v2/projects"


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """configure_logging changes the process's loggers: as they were, after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers, root.level = handlers, level
    for name, each in levels.items():
        logging.getLogger(name).setLevel(each)


def _one_request_and_one_line_of_ours() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json={}))) as http:
        http.get(URL)
    logging.getLogger("tenantdb.handlers.databases").info("default/user-ann Ready")


def test_at_the_default_level_requests_are_not_logged_one_by_one(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(encryption_key="0" * 64))  # TENANTDB_LOG_LEVEL's default: INFO
    _one_request_and_one_line_of_ours()
    logged = capsys.readouterr().err
    assert "default/user-ann Ready" in logged
    assert "HTTP Request" not in logged


def test_verbose_logs_each_request(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(encryption_key="0" * 64), verbose=True)
    _one_request_and_one_line_of_ours()
    logged = capsys.readouterr().err
    assert f"HTTP Request: GET {URL}" in logged
    assert "default/user-ann Ready" in logged
