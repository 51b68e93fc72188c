"""The log filter's second guard: credentials hidden inside base64 (a Secret's data) are masked."""

from __future__ import annotations

import base64
import logging

import pytest

from tenantdb.redact import BODY_LOGGERS, quiet_body_loggers, redact

URI = "postgresql://alice_owner:s3cr3t-pw@ep-1.aws.neon.tech/neondb?sslmode=require"


def test_a_base64_encoded_connection_string_is_masked() -> None:
    encoded = base64.b64encode(URI.encode()).decode()
    text = f'response body: {{"data": {{"DATABASE_URL": "{encoded}"}}}}'
    cleaned = redact(text)
    assert encoded not in cleaned
    assert "<base64 redacted>" in cleaned


def test_harmless_base64_is_left_alone() -> None:
    encoded = base64.b64encode(b"just an ordinary value here").decode()
    assert redact(f"value {encoded}") == f"value {encoded}"


def test_body_printing_loggers_stay_at_info_whatever_the_root_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, put back after the test
    quiet_body_loggers()
    for name in BODY_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name


def test_holding_body_loggers_quiet_never_makes_them_louder(caplog: pytest.LogCaptureFixture) -> None:
    # The demo runs with the root logger at WARNING: httpx's per-request INFO lines must stay out.
    caplog.set_level(logging.WARNING)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    quiet_body_loggers()
    for name in BODY_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
