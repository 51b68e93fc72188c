"""Error answers in Neon's shape: ``{"request_id", "code", "message"}`` (the spec's GeneralError).

Neon leaves ``code`` empty for most errors and names only a few conditions (such as
``PROJECTS_LIMIT_EXCEEDED``); the emulator does the same, so a client must decide on the
HTTP status, not on ``code``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tenantdb.testing.neon import ids

__all__ = [
    "PROJECTS_LIMIT_EXCEEDED",
    "ApiError",
    "bad_request",
    "error_body",
    "error_response",
    "not_found",
]

PROJECTS_LIMIT_EXCEEDED = "PROJECTS_LIMIT_EXCEEDED"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"request_id": ids.request_id(), "code": code, "message": message}


def error_response(
    status: int, message: str, *, code: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


class ApiError(Exception):
    """Raised by handlers; the middleware turns it into an error answer."""

    def __init__(
        self, status: int, message: str, *, code: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers

    def response(self) -> web.Response:
        return error_response(self.status, self.message, code=self.code, headers=self.headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)
