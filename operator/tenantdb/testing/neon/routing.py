"""Where the API lives (``/api/v2``) and which route template a request matched."""

from __future__ import annotations

from aiohttp import web

__all__ = ["API_PREFIX", "below_prefix", "route_of"]

API_PREFIX = "/api/v2"


def below_prefix(path: str) -> str:
    """``/projects`` from ``/api/v2/projects``; other paths unchanged."""
    return (path[len(API_PREFIX) :] or "/") if path.startswith(API_PREFIX) else path


def route_of(request: web.Request) -> str:
    """``"GET /projects/{project_id}"``: the method and the path template below the prefix
    (the path itself when no route matched)."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return f"{request.method} {below_prefix(template)}"
