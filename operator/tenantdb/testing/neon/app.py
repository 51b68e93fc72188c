"""The aiohttp application: middlewares, then the routes below ``/api/v2``."""

from __future__ import annotations

from aiohttp import web

from tenantdb.testing.neon.middleware import MIDDLEWARES
from tenantdb.testing.neon.routes import account, branches, consumption, endpoints, organizations, projects
from tenantdb.testing.neon.routing import API_PREFIX
from tenantdb.testing.neon.state import STATE, EmulatorState

__all__ = ["build_app"]

_MAX_BODY_BYTES = 1024 * 1024


def build_app(state: EmulatorState) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=_MAX_BODY_BYTES)
    app[STATE] = state
    for table in (
        account.routes,
        organizations.routes,
        projects.routes,
        branches.routes,
        endpoints.routes,
        consumption.routes,
    ):
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
    return app
