"""``tenantdb emulator neon``: serves until SIGTERM, then cleans up its databases."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from tenantdb.testing.postgres import PostgresServer, free_port
from tests.emulator.helpers import connect


async def test_the_cli_serves_and_cleans_up_on_sigterm(postgres_server: PostgresServer) -> None:
    port = free_port()
    # The superuser URI travels through the environment, not the (visible) command line.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import os, sys; from tenantdb.cli import main; "
        "sys.exit(main(['emulator', 'neon', '--port', sys.argv[1], '--postgres-url', os.environ['PG_ADMIN'],"
        " '--api-key', 'cli-key']))",
        str(port),
        env={**os.environ, "PG_ADMIN": postgres_server.admin_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        second = (await asyncio.wait_for(process.stdout.readline(), 5)).decode()
        base_url = first.split(": ", 1)[1].strip()
        assert base_url == f"http://127.0.0.1:{port}/api/v2"
        assert second.strip() == "API key: cli-key"
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": "Bearer cli-key"}
        ) as client:
            created = (await client.post("/projects", json={"project": {"name": "from-cli"}})).json()
        database = created["connection_uris"][0]["connection_parameters"]["database"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    async with await connect(postgres_server.admin_url) as admin:
        cursor = await admin.execute("select count(*) from pg_database where datname = %s", (database,))
        row = await cursor.fetchone()
    assert row == (0,)
