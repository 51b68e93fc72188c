"""``/auth`` and ``/users/me/organizations``: what the operator checks at start-up.

The emulator's key is an organisation key (``api_key_org``) of the one organisation it
serves, ``EmulatorOptions.org_id``: the kind of key tenantdb recommends.
"""

from __future__ import annotations

import datetime

from aiohttp import web

from tenantdb.testing.neon.clock import timestamp
from tenantdb.testing.neon.state import STATE

__all__ = ["routes"]

routes = web.RouteTableDef()

_CREATED = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


@routes.get("/auth")
async def auth_details(request: web.Request) -> web.Response:
    org_id = request.app[STATE].options.org_id
    return web.json_response({"account_id": org_id, "auth_method": "api_key_org"})


@routes.get("/users/me/organizations")
async def my_organizations(request: web.Request) -> web.Response:
    org_id = request.app[STATE].options.org_id
    organization = {
        "id": org_id,
        "name": "Emulated organisation",
        "handle": org_id,
        "plan": "launch",
        "created_at": timestamp(_CREATED),
        "updated_at": timestamp(_CREATED),
        "managed_by": "console",
    }
    return web.json_response({"organizations": [organization]})
