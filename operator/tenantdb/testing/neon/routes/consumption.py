"""``GET /consumption_history/v2/projects``: per-project metrics by hour, day or month.

Checks as the spec describes them: ``org_id``, ``from``, ``to``, ``granularity`` and
``metrics`` are required (400 without them); ``project_ids`` takes at most 100 ids (400
beyond); ``limit`` is 1..100; ``from`` must lie within the granularity's reach (168 hours,
60 days, a year) and not before 2024-03-01, else 406; an ``org_id`` other than the key's
is 404. See :mod:`..consumption` for how the values are spread over timeframes.
"""

from __future__ import annotations

import datetime

from aiohttp import web

from tenantdb.testing.neon.callers import CALLER, check_org
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.consumption import (
    EARLIEST_FROM,
    GRANULARITIES,
    HISTORY_LIMITS,
    floor,
    project_consumption,
    timeframes,
)
from tenantdb.testing.neon.errors import ApiError, bad_request
from tenantdb.testing.neon.options import CONSUMPTION_METRICS
from tenantdb.testing.neon.pagination import page, pagination_fields, parse_limit
from tenantdb.testing.neon.parsing import split_list
from tenantdb.testing.neon.state import STATE

__all__ = ["routes"]

routes = web.RouteTableDef()

_REQUIRED = ("org_id", "from", "to", "granularity", "metrics")
_MAX_PROJECT_IDS = 100
_DEFAULT_LIMIT, _MAX_LIMIT = 10, 100


def _moment(raw: str, name: str) -> datetime.datetime:
    # An unencoded "+00:00" arrives as " 00:00": a query string turns "+" into a space.
    try:
        moment = datetime.datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise bad_request(f"{name}: expected an RFC 3339 date-time, got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _metrics(request: web.Request) -> list[str]:
    metrics = list(dict.fromkeys(split_list(request, "metrics")))
    unknown = [metric for metric in metrics if metric not in CONSUMPTION_METRICS]
    if unknown:
        raise bad_request(
            f"metrics: unknown {', '.join(unknown)}; supported: {', '.join(CONSUMPTION_METRICS)}"
        )
    return metrics


@routes.get("/consumption_history/v2/projects")
async def project_consumption_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    query = request.query
    missing = [name for name in _REQUIRED if not split_list(request, name)]
    if missing:
        raise bad_request(f"missing required query parameter(s): {', '.join(missing)}")
    org_id = check_org(query["org_id"], request[CALLER])
    granularity = query["granularity"]
    if granularity not in GRANULARITIES:
        raise bad_request(f"granularity: expected one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    metrics = _metrics(request)
    start, end = _moment(query["from"], "from"), _moment(query["to"], "to")
    if end <= start:
        raise bad_request("to: must be later than from")
    now = utcnow()
    reach = max(EARLIEST_FROM, floor(now - HISTORY_LIMITS[granularity], granularity))
    if floor(start, granularity) < reach:
        raise ApiError(
            406,
            f"from: {granularity} consumption reaches back to {reach:%Y-%m-%dT%H:%M:%SZ} only; "
            "shorten the range or choose a coarser granularity",
        )
    project_ids = split_list(request, "project_ids")
    if len(project_ids) > _MAX_PROJECT_IDS:
        raise bad_request(f"project_ids: at most {_MAX_PROJECT_IDS} ids per request, got {len(project_ids)}")
    limit = parse_limit(query.get("limit"), default=_DEFAULT_LIMIT, maximum=_MAX_LIMIT)

    wanted = set(project_ids)
    # Timeframes that start after now hold nothing and are not listed: stop generating there.
    frames = timeframes(start, min(end, now + datetime.timedelta(seconds=1)), granularity)
    first = frames[0][0] if frames else start
    candidates = [
        project
        for project in state.registry.all()
        if (not wanted or project.id in wanted)
        and project.org_id == org_id
        and project.created_at < end
        and (project.deleted_at is None or project.deleted_at > first)
    ]
    items = page(candidates, cursor=query.get("cursor"), limit=limit, find=state.registry.get)
    answered = [(project, project_consumption(project, frames, metrics, now)) for project in items]
    body = {
        # A project that used nothing in the range is left out, as Neon does.
        "projects": [
            {"project_id": project.id, "periods": periods} for project, periods in answered if periods
        ],
        **pagination_fields(items),
    }
    return web.json_response(body)
