"""Reading request bodies and query strings, answering 400 in Neon's shape when they are wrong."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tenantdb.testing.neon.errors import bad_request

__all__ = [
    "optional_bool",
    "optional_int",
    "optional_number",
    "optional_object",
    "optional_str",
    "query_bool",
    "read_body",
    "read_object",
    "split_list",
]


async def read_object(request: web.Request) -> dict[str, Any]:
    """A JSON body that must be an object (``{"destination_org_id": ..., ...}``)."""
    try:
        body = json.loads(await request.read() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


async def read_body(request: web.Request, key: str) -> dict[str, Any]:
    """The object under ``key`` of a JSON body such as ``{"project": {...}}``."""
    try:
        body = json.loads(await request.read() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"request body must be a JSON object with an object {key!r}")
    inner: dict[str, Any] = body[key]
    return inner


def optional_object(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{field}: expected an object")
    return value


def optional_str(
    data: dict[str, Any], field: str, *, min_length: int = 1, max_length: int = 256
) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise bad_request(f"{field}: expected a string of {min_length} to {max_length} characters")
    return value


def optional_int(data: dict[str, Any], field: str, *, minimum: int, maximum: int) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_request(f"{field}: expected an integer from {minimum} to {maximum}")
    return value


def optional_number(data: dict[str, Any], field: str, *, minimum: float, maximum: float) -> float | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        raise bad_request(f"{field}: expected a number from {minimum} to {maximum}")
    return float(value)


def optional_bool(data: dict[str, Any], field: str) -> bool | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"{field}: expected true or false")
    return value


def query_bool(request: web.Request, name: str, *, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise bad_request(f"{name}: expected true or false, got {raw!r}")


def split_list(request: web.Request, name: str) -> list[str]:
    """A list parameter given repeated (``a=1&a=2``), comma-separated (``a=1,2``) or both."""
    return [item.strip() for raw in request.query.getall(name, []) for item in raw.split(",") if item.strip()]
