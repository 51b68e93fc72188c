"""Keep secrets out of logs: a logging filter that masks credentials wherever they appear.

The code never logs a secret on purpose; this is the second guard, for messages built by
libraries (kopf, httpx, psycopg) from values that might carry one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re

__all__ = ["BODY_LOGGERS", "RedactingFilter", "install_redaction", "quiet_body_loggers", "redact"]

# Third-party loggers that print request or response bodies (a Secret's base64 data) or headers
# (the Authorization header) at DEBUG: held at INFO whatever the operator's own level.
BODY_LOGGERS = (
    "kopf._cogs.clients",  # kopf's API client: request and response details
    "aiohttp.client",
    "httpx",
    "httpcore",  # headers, Authorization included
    "hpack",
    "psycopg",
)

# scheme://user:password@host  →  scheme://user:***@host
_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# password=... / PGPASSWORD=... / "password": "..."
_KEYWORD_SECRETS = re.compile(
    r"(?P<key>(?:pg)?password|api[_-]?key|authorization|encryption[_-]?key)(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<value>(?:Bearer\s+)?[^'\"\s,}&]+)",
    re.IGNORECASE,
)
# Sim-format ciphertexts are not secret, but they are long and useless in logs.
_CIPHERTEXT = re.compile(r"\b[0-9a-f]{32}:[0-9a-f]{8,}:[0-9a-f]{32}\b")
# A Secret's data travels base64-encoded: a credential inside it escapes the patterns above.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")


def _redact_plain(text: str) -> str:
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _KEYWORD_SECRETS.sub(lambda m: f"{m['key']}{m['sep']}***", text)
    return _CIPHERTEXT.sub("<encrypted>", text)


def _redact_base64(match: re.Match[str]) -> str:
    token = match.group(0)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return token
    return "<base64 redacted>" if _redact_plain(decoded) != decoded else token


def redact(text: str) -> str:
    return _BASE64.sub(_redact_base64, _redact_plain(text))


def quiet_body_loggers() -> None:
    """Hold the loggers that print bodies or headers at INFO or quieter, whatever the root level.

    Only ever quieter: a logger already at INFO or above (itself or through its parents) is left
    as it is, so a quiet root (the demo's WARNING) keeps them quiet too.
    """
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of the root logger (filters on loggers don't propagate)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
