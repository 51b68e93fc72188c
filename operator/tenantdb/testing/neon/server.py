"""``tenantdb emulator neon``: serve the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from tenantdb.testing.neon.emulator import NeonEmulator
from tenantdb.testing.neon.options import EmulatorOptions, options_from_args

__all__ = ["serve", "serve_from_cli"]


async def serve(*, postgres_url: str, options: EmulatorOptions, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM; then drop every database the emulator made."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    emulator = NeonEmulator(postgres_admin_url=postgres_url, options=options)
    base_url = await emulator.start(host=host, port=port)
    try:
        # The API key is printed on purpose: it is the emulator's, and clients need it.
        print(f"Neon API emulator: {base_url}", flush=True)
        print(f"API key: {options.api_key}", flush=True)
        print(f"Organization: {options.org_id}", flush=True)
        await stopping.wait()
    finally:
        await emulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve_from_cli(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(
        serve(postgres_url=args.postgres_url, options=options_from_args(args), host=args.host, port=args.port)
    )
    return 0
