"""An emulator of the Neon API v2, backed by a real PostgreSQL server.

``NeonEmulator`` serves the calls the operator makes, exactly per Neon's OpenAPI contract,
and makes every project a real database with a real login role, so the connection URIs it
hands out connect. ``EmulatorOptions`` injects what production does to clients: latency,
rate limits (429), locked projects (423), 5xx answers, dropped connections, outages and
project limits. See :mod:`tenantdb.testing.neon.emulator` for the names it gives databases.

The emulator itself needs aiohttp (the ``testing`` extra): it is imported on first use, so
``tenantdb.testing.neon.options`` (the CLI's flags) stays importable without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenantdb.testing.neon.calls import DROPPED_STATUS, CallRecord
from tenantdb.testing.neon.options import EmulatorOptions

if TYPE_CHECKING:
    from tenantdb.testing.neon.emulator import NeonEmulator, PhysicalNames

__all__ = ["DROPPED_STATUS", "CallRecord", "EmulatorOptions", "NeonEmulator", "PhysicalNames"]


def __getattr__(name: str) -> Any:
    if name in ("NeonEmulator", "PhysicalNames"):
        from tenantdb.testing.neon import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
