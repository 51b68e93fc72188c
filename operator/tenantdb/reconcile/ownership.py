"""Whose is it? The checks made before the operator uses or overwrites something another writer
can change: a connection URI found in a Secret, a metadata row, an env var.

A URI belongs to a resource's project when its host is the project's endpoint host and its
database and role are the resource's (Neon's URIs), or when it reaches the same database as the
URI recorded in the resource's own row; a row when it holds one of the resource's projects; an
env var when it reaches the same database as one of the resource's URIs.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["env_var_is_ours", "row_is_ours", "same_database", "uri_host", "uri_is_for"]


def uri_host(uri: str | None) -> str:
    if not uri:
        return ""
    try:
        return (urlsplit(uri).hostname or "").lower()
    except ValueError:
        return ""


def uri_is_for(uri: str, *, host: str, database_name: str, role_name: str) -> bool:
    """Whether ``uri`` connects to ``database_name`` as ``role_name`` on ``host``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return (
        bool(host)
        and (parts.hostname or "").lower() == host.lower()
        and unquote(parts.path.lstrip("/")) == database_name
        and unquote(parts.username or "") == role_name
    )


def _target(uri: str) -> tuple[str, int | None, str, str] | None:
    try:
        parts = urlsplit(uri)
        return (
            (parts.hostname or "").lower(),
            parts.port,
            unquote(parts.path.lstrip("/")),
            unquote(parts.username or ""),
        )
    except ValueError:
        return None


def same_database(a: str | None, b: str | None) -> bool:
    """Whether two URIs reach the same database as the same role (the password may differ)."""
    if not a or not b:
        return False
    target = _target(a)
    return target is not None and target == _target(b)


def row_is_ours(row: Any, projects: Collection[str]) -> bool:
    """A missing row is free; a row is ours when it holds one of our projects."""
    return row is None or getattr(row, "project_id", None) in projects


def env_var_is_ours(value: str | None, ours: Collection[str | None]) -> bool:
    """A missing (or undecryptable) value is free; a value is ours when it reaches one of our
    databases (``ours``: URIs that are this resource's, from Neon or from its own row)."""
    return not value or any(same_database(value, uri) for uri in ours)
