"""``tenantdb orphans``: every Neon project the operator left behind, on purpose or not.

Reads ``tenantdb_orphaned_project`` through one plain connection (no cipher needed), from
the same configuration as the operator. Nothing printed contains the DB URL.
"""

from __future__ import annotations

import json
import sys

from pydantic import ValidationError

from tenantdb.config import Settings
from tenantdb.store import orphans
from tenantdb.store.errors import StoreError
from tenantdb.store.migrate import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _config_error
from tenantdb.store.orphans import OrphanRow
from tenantdb.store.pool import connect
from tenantdb.store.store import DEFAULT_TIMEOUT_SECONDS
from tenantdb.store.translate import translate_errors

__all__ = ["list_left_behind", "orphans_from_environment"]

_COLUMNS = ("DISPOSITION", "PROJECT", "NAME IN NEON", "RESOURCE", "RECORDED", "REASON")


async def list_left_behind(url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> list[OrphanRow]:
    conn = await connect(url, timeout_seconds=timeout_seconds)
    try:
        with translate_errors("list_orphans"):
            return await orphans.list_all(conn)
    finally:
        await conn.close()


def _resource(row: OrphanRow) -> str:
    return f"{row.kind} {row.namespace}/{row.name}" if row.name else "-"


def _as_json(row: OrphanRow) -> dict[str, str | None]:
    return {
        "disposition": row.disposition,
        "projectId": row.project_id,
        "projectName": row.project_name,
        "kind": row.kind,
        "namespace": row.namespace,
        "name": row.name,
        "reason": row.reason,
        "recordedAt": row.recorded_at.isoformat(),
        # When deletionPolicy: Retain kept it (what the retention counts from); null otherwise.
        "retainedAt": row.retained_at.isoformat() if row.retained_at else None,
    }


async def orphans_from_environment(*, as_json: bool = False, disposition: str | None = None) -> int:
    """Print the table (or JSON lines); exit code as ``tenantdb migrate``'s."""
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"tenantdb orphans: invalid configuration: {_config_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    url = settings.metadata_database_url.get_secret_value()
    if not url.strip():
        print("tenantdb orphans: TENANTDB_METADATA_DATABASE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    try:
        rows = await list_left_behind(url)
    except StoreError as exc:
        print(f"tenantdb orphans: {exc}", file=sys.stderr)
        return EXIT_FAILED
    rows = [row for row in rows if disposition is None or row.disposition == disposition]
    if as_json:
        for row in rows:
            print(json.dumps(_as_json(row)))
        return EXIT_OK
    table = [_COLUMNS] + [
        (
            row.disposition,
            row.project_id,
            row.project_name or "-",
            _resource(row),
            row.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            row.reason,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS) - 1)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)), line[-1])
    return EXIT_OK
