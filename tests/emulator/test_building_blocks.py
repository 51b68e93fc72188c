"""The emulator's small parts: ids and physical names, rate windows, URIs, CLI options."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.options import EmulatorOptions, add_emulator_arguments, options_from_args
from tenantdb.testing.neon.ratelimit import SlidingWindows
from tenantdb.testing.neon.uris import ServerAddress


def test_physical_names_fit_postgres_and_keep_the_project_digits() -> None:
    assert ids.physical_name("neondb", "wandering-fog-12345678") == "neondb_12345678"
    long = ids.physical_name("é" * 60, "wandering-fog-12345678")
    assert len(long.encode()) <= 63
    assert long.endswith("_12345678")
    long.encode().decode()  # cut on a character boundary


def test_neon_shaped_ids() -> None:
    assert ids.project_id().count("-") == 2
    assert ids.branch_id().startswith("br-")
    assert ids.endpoint_id().startswith("ep-")
    password = ids.password()
    assert password.startswith("npg_")
    assert len(password) == 16


def test_sliding_window_refuses_over_budget_and_says_when_to_retry() -> None:
    windows = SlidingWindows()
    for second in (0.0, 10.0, 20.0):
        assert windows.retry_after("account", limit=3, window=60, now=second) is None
        windows.record("account", second)
    assert windows.retry_after("account", limit=3, window=60, now=30.0) == 30  # the first leaves at 60
    assert windows.retry_after("other", limit=3, window=60, now=30.0) is None
    assert windows.retry_after("account", limit=3, window=60, now=60.5) is None


def test_server_address_reads_the_admin_uri() -> None:
    address = ServerAddress.from_admin_url("postgresql://u:p@127.0.0.1:5433/postgres?sslmode=require")
    assert (address.host, address.port, address.ssl, address.pooler_host) == (
        "127.0.0.1",
        5433,
        True,
        "localhost",
    )
    plain = ServerAddress.from_admin_url("postgresql://u:p@db.internal/postgres")
    assert (plain.port, plain.ssl, plain.pooler_host) == (5432, False, "db.internal")
    uri = plain.uri(user="r", password="p@ss/word", database="d", pooled=True)
    assert uri == "postgresql://r:p%40ss%2Fword@db.internal:5432/d?sslmode=disable"
    forced = ServerAddress.from_admin_url("postgresql://u:p@127.0.0.1/postgres", ssl=True)
    assert forced.sslmode == "require"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    return parser.parse_args(["--postgres-url", "postgresql://x", *argv])


def test_every_option_has_a_flag() -> None:
    options = options_from_args(_parse(
        "--api-key", "k", "--org-id", "org-x", "--latency", "0.1,0.2", "--create-latency", "0.3,0.8",
        "--rate-limit-per-minute", "700", "--route-rate-limit-per-second", "40",
        "--operation-seconds", "0.5", "--error-rate", "0.1", "--drop-rate", "0.05",
        "--no-fault-after-processing", "--max-projects", "3", "--regions", "aws-us-east-2,aws-us-west-2",
        "--pg-versions", "16,17",
    ))  # fmt: skip
    assert options == EmulatorOptions(
        api_key="k", org_id="org-x", latency_seconds=(0.1, 0.2), create_latency_seconds=(0.3, 0.8),
        rate_limit_per_minute=700, route_rate_limit_per_second=40, operation_seconds=0.5,
        error_rate=0.1, drop_rate=0.05, fault_after_processing=False, max_projects=3,
        regions=("aws-us-east-2", "aws-us-west-2"), pg_versions=(16, 17),
    )  # fmt: skip
    assert options_from_args(_parse()) == EmulatorOptions()
    assert _parse("--latency", "0.2").latency == (0.2, 0.2)


@pytest.mark.parametrize("argv", [("--latency", "0.5,0.1"), ("--error-rate", "1.5"), ("--max-projects", "0")])
def test_bad_flags_are_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_the_options_import_without_aiohttp() -> None:
    code = (
        "import sys; import tenantdb.testing.neon.options, tenantdb.testing.neon; "
        "assert 'aiohttp' not in sys.modules, 'aiohttp imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_package_exports_what_it_lists() -> None:
    import tenantdb.testing.neon as package

    assert sorted(package.__all__) == [
        "CallRecord", "DROPPED_STATUS", "EmulatorOptions", "NeonEmulator", "PhysicalNames",
    ]  # fmt: skip
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError):
        _ = package.NoSuchThing  # type: ignore[attr-defined]
