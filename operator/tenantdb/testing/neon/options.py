"""Knobs of the Neon API emulator, and the ``tenantdb emulator neon`` flags that set them.

Argparse and dataclasses only, so the CLI can build its parser without aiohttp installed.
Every field of :class:`EmulatorOptions` may be changed while the emulator runs: it reads
them on every request (tests flip ``down`` or ``error_rate`` mid-test).
"""

from __future__ import annotations

import argparse
import dataclasses

__all__ = [
    "CONSUMPTION_METRICS",
    "DEFAULT_PG_VERSIONS",
    "DEFAULT_REGIONS",
    "EmulatorOptions",
    "OrganizationOptions",
    "add_emulator_arguments",
    "options_from_args",
]

DEFAULT_REGIONS: tuple[str, ...] = (
    "aws-us-east-1",
    "aws-us-east-2",
    "aws-us-west-2",
    "aws-eu-central-1",
    "aws-eu-west-2",
    "aws-ap-southeast-1",
    "azure-eastus2",
    "azure-westus3",
    "azure-gwc",
)
DEFAULT_PG_VERSIONS: tuple[int, ...] = (14, 15, 16, 17, 18)

#: The metrics ``GET /consumption_history/v2/projects`` knows (the spec's list).
CONSUMPTION_METRICS: tuple[str, ...] = (
    "compute_unit_seconds",
    "root_branch_bytes_month",
    "child_branch_bytes_month",
    "instant_restore_bytes_month",
    "public_network_transfer_bytes",
    "private_network_transfer_bytes",
    "extra_branches_month",
    "snapshot_storage_bytes_month",
)


@dataclasses.dataclass
class OrganizationOptions:
    """One more organisation the emulator serves, besides the default one.

    Its key reaches only it (an organisation key); its budget and project limit are its own,
    as Neon's are per organisation key and per organisation.
    """

    org_id: str
    api_key: str
    rate_limit_per_minute: int | None = None
    """Requests per minute with this key (sliding 60 s window); None = not enforced."""
    max_projects: int | None = None
    """Live projects allowed in this organisation; beyond, 422 ``PROJECTS_LIMIT_EXCEEDED``."""
    revoked: bool = False
    """The key was revoked in the console: every request with it answers 401."""


@dataclasses.dataclass
class EmulatorOptions:
    """How the emulator behaves; every field may change at run time."""

    api_key: str = "neon-emulator-key"
    """The one bearer token accepted; any other answers 401."""

    org_id: str = "org-emulator"
    """The organisation the API key belongs to (an org key: ``org_id`` may be left out)."""

    latency_seconds: tuple[float, float] = (0.0, 0.0)
    """Uniform random delay (min, max) before every request is handled."""

    create_latency_seconds: tuple[float, float] | None = None
    """Delay for ``POST /projects`` instead of ``latency_seconds`` (real creates take ~0.3-0.8 s)."""

    rate_limit_per_minute: int | None = None
    """Account-wide budget over a sliding 60 s window; None = not enforced (Neon: 700)."""

    route_rate_limit_per_second: int | None = None
    """Per route (method + path template) over a sliding 1 s window; None = off (Neon: 40)."""

    consumption_rate_limit_per_minute: int | None = None
    """The consumption routes' own token bucket (v2 and legacy share it), on top of the
    account budget; None = off (Neon: about 50)."""

    operation_seconds: float = 0.0
    """How long the operations a mutation starts stay ``running`` (then ``finished``).
    While one runs, conflicting mutations of the same project answer 423 Locked."""

    error_rate: float = 0.0
    """Fraction of requests answered 500 or 503 (an injected fault)."""

    drop_rate: float = 0.0
    """Fraction of requests whose connection is closed without any answer."""

    fault_after_processing: bool = True
    """Whether an injected error or drop may strike after the request was carried out
    (half of them do): the create succeeded but the client never learnt it."""

    refuse: dict[str, int] = dataclasses.field(default_factory=dict)
    """Route template -> HTTP status answered instead of carrying the request out, e.g.
    ``{"DELETE /projects/{project_id}": 409}`` (a refusal Neon may give, injected)."""

    lose_answers: dict[str, int] = dataclasses.field(default_factory=dict)
    """Route template -> how many of its next requests are carried out and then left without an
    answer (the connection closed): the lost answer of one chosen call (a password reset, say),
    counted down as it strikes."""

    down: bool = False
    """An outage: every request is answered 503."""

    recovery_window_seconds: float = 7 * 86400.0
    """How long a deleted project stays recoverable (``POST /projects/{id}/recover``); Neon: 7 days.
    Its data is kept, unreachable, until then, and dropped after."""

    max_projects: int | None = None
    """Live projects allowed in the account; beyond, 422 ``PROJECTS_LIMIT_EXCEEDED``."""

    organizations: list[OrganizationOptions] = dataclasses.field(default_factory=list)
    """More organisations, each with its own key, budget and project limit. The default one
    is ``org_id`` with ``api_key``, ``rate_limit_per_minute`` and ``max_projects``."""

    account_key: str | None = None
    """A personal key of a member of every organisation: it reaches all of them (moving
    projects between two needs access to both). Its own budget is ``rate_limit_per_minute``."""

    regions: tuple[str, ...] = DEFAULT_REGIONS
    """Accepted ``region_id`` values; the first is the default."""

    pg_versions: tuple[int, ...] = DEFAULT_PG_VERSIONS
    """Accepted ``pg_version`` values (the spec's default, 17, when left out)."""


def _float_range(text: str) -> tuple[float, float]:
    """``"0.1,0.5"`` -> (0.1, 0.5); a single number is a fixed delay."""
    parts = [part.strip() for part in text.split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in seconds, got {text!r}") from exc
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or values[0] < 0 or values[1] < values[0]:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return values[0], values[1]


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _int_csv(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``tenantdb emulator neon``: where to listen and serve from, and every option."""
    defaults = EmulatorOptions()
    parser.add_argument("--port", type=int, default=8181, help="port to listen on (default 8181)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--postgres-url",
        required=True,
        help="superuser URI of the PostgreSQL server that holds the projects' databases",
    )
    parser.add_argument("--api-key", default=defaults.api_key, help="the bearer token accepted")
    parser.add_argument("--org-id", default=defaults.org_id, help="the organisation of the API key")
    parser.add_argument(
        "--latency",
        type=_float_range,
        default=defaults.latency_seconds,
        metavar="MIN,MAX",
        help="random delay of every request, in seconds",
    )
    parser.add_argument(
        "--create-latency",
        type=_float_range,
        default=None,
        metavar="MIN,MAX",
        help="random delay of POST /projects instead (Neon takes ~0.3,0.8)",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=_positive_int,
        default=None,
        metavar="N",
        help="account-wide requests per minute, then 429 (Neon: 700)",
    )
    parser.add_argument(
        "--route-rate-limit-per-second",
        type=_positive_int,
        default=None,
        metavar="N",
        help="requests per second per route, then 429 (Neon: 40)",
    )
    parser.add_argument(
        "--consumption-rate-limit-per-minute",
        type=_positive_int,
        default=None,
        metavar="N",
        help="requests per minute to the consumption routes (token bucket), then 429 (Neon: ~50)",
    )
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=defaults.operation_seconds,
        metavar="SECONDS",
        help="how long operations stay running (423 meanwhile)",
    )
    parser.add_argument(
        "--error-rate",
        type=_fraction,
        default=defaults.error_rate,
        metavar="FRACTION",
        help="fraction of requests answered 500/503",
    )
    parser.add_argument(
        "--drop-rate",
        type=_fraction,
        default=defaults.drop_rate,
        metavar="FRACTION",
        help="fraction of requests whose connection is dropped unanswered",
    )
    parser.add_argument(
        "--no-fault-after-processing",
        dest="fault_after_processing",
        action="store_false",
        help="injected faults strike only before a request is carried out",
    )
    parser.add_argument(
        "--max-projects",
        type=_positive_int,
        default=None,
        metavar="N",
        help="project limit of the account, then 422 PROJECTS_LIMIT_EXCEEDED",
    )
    parser.add_argument(
        "--recovery-window",
        dest="recovery_window_seconds",
        type=float,
        default=defaults.recovery_window_seconds,
        metavar="SECONDS",
        help="how long a deleted project stays recoverable (Neon: 7 days)",
    )
    parser.add_argument(
        "--regions",
        type=_csv,
        default=defaults.regions,
        metavar="R1,R2",
        help="accepted region_id values (the first is the default)",
    )
    parser.add_argument(
        "--pg-versions",
        type=_int_csv,
        default=defaults.pg_versions,
        metavar="V1,V2",
        help="accepted pg_version values",
    )


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    """The options that the flags of :func:`add_emulator_arguments` describe."""
    return EmulatorOptions(
        api_key=args.api_key,
        org_id=args.org_id,
        latency_seconds=args.latency,
        create_latency_seconds=args.create_latency,
        rate_limit_per_minute=args.rate_limit_per_minute,
        route_rate_limit_per_second=args.route_rate_limit_per_second,
        consumption_rate_limit_per_minute=args.consumption_rate_limit_per_minute,
        operation_seconds=args.operation_seconds,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        fault_after_processing=args.fault_after_processing,
        max_projects=args.max_projects,
        recovery_window_seconds=args.recovery_window_seconds,
        regions=args.regions,
        pg_versions=args.pg_versions,
    )
