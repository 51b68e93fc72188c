"""Command-line options of ``tenantdb emulator neon`` (argparse only: importable without aiohttp)."""

from __future__ import annotations

import argparse

__all__ = ["add_emulator_arguments"]


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8181, help="port to listen on (127.0.0.1)")
    parser.add_argument(
        "--postgres-url",
        required=True,
        help="superuser URI of the PostgreSQL server that holds the projects' databases",
    )
