"""Keyset pagination as the spec describes it (``limit``, ``cursor`` -> ``pagination.cursor``).

Lists run newest project first. The cursor is the id of the last project on a page; the
next page holds the projects created before it (a deleted cursor project still works).
``pagination.cursor`` is present whenever the page is not empty, as on Neon: a client stops
on a page shorter than ``limit`` (or one without a cursor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tenantdb.testing.neon.errors import bad_request
from tenantdb.testing.neon.model import Project

__all__ = ["page", "pagination_fields", "parse_limit"]


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"limit: expected an integer from 1 to {maximum}, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise bad_request(f"limit: must be from 1 to {maximum}, got {value}")
    return value


def page(
    projects: Sequence[Project], *, cursor: str | None, limit: int, find: Callable[[str], Project | None]
) -> list[Project]:
    """The page of ``projects`` (newest first) after ``cursor``; ``find`` resolves the cursor."""
    if cursor:
        anchor = find(cursor)
        if anchor is None:
            raise bad_request(f"cursor: unknown cursor {cursor!r}")
        projects = [project for project in projects if project.seq < anchor.seq]
    return list(projects[:limit])


def pagination_fields(items: Sequence[Project]) -> dict[str, Any]:
    """``{"pagination": {"cursor": ...}}`` for a non-empty page, else nothing."""
    return {"pagination": {"cursor": items[-1].id}} if items else {}
