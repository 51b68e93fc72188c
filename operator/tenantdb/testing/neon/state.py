"""What every request handler shares, stored on the aiohttp application."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

from aiohttp import web

from tenantdb.testing.neon.backing import PostgresBacking
from tenantdb.testing.neon.calls import CallLog
from tenantdb.testing.neon.options import EmulatorOptions
from tenantdb.testing.neon.ratelimit import SlidingWindows, TokenBuckets
from tenantdb.testing.neon.registry import Registry
from tenantdb.testing.neon.uris import ServerAddress

__all__ = ["STATE", "EmulatorState"]


@dataclasses.dataclass
class EmulatorState:
    options: EmulatorOptions
    address: ServerAddress
    backing: PostgresBacking
    registry: Registry = dataclasses.field(default_factory=Registry)
    calls: CallLog = dataclasses.field(default_factory=CallLog)
    windows: SlidingWindows = dataclasses.field(default_factory=SlidingWindows)
    inflight: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)
    """Creates carried out on their own, whether or not their client still waits."""
    effects: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)
    """Effects waiting for their operations to finish (see :mod:`.effects`)."""
    buckets: TokenBuckets = dataclasses.field(default_factory=TokenBuckets)
    random: random.Random = dataclasses.field(default_factory=random.Random)
    """The dice of latency and injected faults (seed it for a reproducible run)."""


STATE = web.AppKey("neon_emulator_state", EmulatorState)
