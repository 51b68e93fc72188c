"""``/auth`` and ``/users/me/organizations``: what the operator checks at start-up.

An organisation key (``api_key_org``) sees its own organisation only: the kind of key
tenantdb recommends, one per organisation. The account key (``api_key_user``) sees all.
"""

from __future__ import annotations

import datetime

from aiohttp import web

from tenantdb.testing.neon.callers import CALLER
from tenantdb.testing.neon.clock import timestamp

__all__ = ["routes"]

routes = web.RouteTableDef()

_CREATED = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


@routes.get("/auth")
async def auth_details(request: web.Request) -> web.Response:
    caller = request[CALLER]
    return web.json_response({"account_id": caller.default_org, "auth_method": caller.auth_method})


@routes.get("/users/me/organizations")
async def my_organizations(request: web.Request) -> web.Response:
    organizations = [
        {
            "id": org_id,
            "name": f"Emulated organisation {org_id}",
            "handle": org_id,
            "plan": "launch",
            "created_at": timestamp(_CREATED),
            "updated_at": timestamp(_CREATED),
            "managed_by": "console",
        }
        for org_id in request[CALLER].orgs
    ]
    return web.json_response({"organizations": organizations})
