"""``tenantdb migrate``: bring the metadata DB's schema up to date, from the environment.

Migrating needs no cipher, so it goes through one plain connection rather than a
``MetadataStore``. Configuration comes from ``tenantdb.config.Settings`` like everywhere else
(so ``ENCRYPTION_KEY`` must be set, as for the operator itself). Nothing printed ever contains
the DB URL: pydantic's validation messages would quote the inputs, so only field names and
error messages without inputs are shown.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from tenantdb.config import Settings
from tenantdb.store.errors import StoreError, StoreUnavailableError
from tenantdb.store.migrations import apply_migrations
from tenantdb.store.pool import connect
from tenantdb.store.store import DEFAULT_TIMEOUT_SECONDS
from tenantdb.store.translate import translate_errors

__all__ = ["migrate_database", "migrate_from_environment"]

EXIT_OK = 0
EXIT_FAILED = 1  # the DB is unreachable or the migration failed
EXIT_CONFIG = 2  # configuration missing or invalid, as for `tenantdb crypto`


async def migrate_database(url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> list[str]:
    """Apply pending migrations to the DB at ``url``; return the names applied."""
    conn = await connect(url, timeout_seconds=timeout_seconds)
    try:
        with translate_errors("migrate"):
            return await apply_migrations(conn)
    finally:
        await conn.close()


def _config_error(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return "; ".join(problems)


async def migrate_from_environment() -> int:
    """Run the migrations against ``TENANTDB_METADATA_DATABASE_URL``; print them; exit code."""
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"tenantdb migrate: invalid configuration: {_config_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    url = settings.metadata_database_url.get_secret_value()
    if not url.strip():
        print("tenantdb migrate: TENANTDB_METADATA_DATABASE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    try:
        applied = await migrate_database(url)
    except StoreUnavailableError as exc:
        print(f"tenantdb migrate: the metadata DB is unreachable ({exc})", file=sys.stderr)
        return EXIT_FAILED
    except StoreError as exc:
        print(f"tenantdb migrate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("the metadata DB schema is up to date")
    return EXIT_OK
