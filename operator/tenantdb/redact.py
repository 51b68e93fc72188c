"""Keep secrets out of logs: a logging filter that masks credentials wherever they appear.

The code never logs a secret on purpose; this is the second guard, for messages built by
libraries (kopf, httpx, psycopg) from values that might carry one.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_redaction", "redact"]

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


def redact(text: str) -> str:
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _KEYWORD_SECRETS.sub(lambda m: f"{m['key']}{m['sep']}***", text)
    return _CIPHERTEXT.sub("<encrypted>", text)


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
