"""The ``tenantdb`` command: run the operator, migrate, adopt, describe, print CRDs, emulate Neon, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from tenantdb import __version__

__all__ = ["main"]


def _cmd_crds(args: argparse.Namespace) -> int:
    from tenantdb.api.crd import generate_crds, render_crd_yaml

    crds = generate_crds()
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        for crd in crds:
            path = os.path.join(args.output_dir, f"{crd['metadata']['name']}.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(render_crd_yaml(crd))
            print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write("".join(render_crd_yaml(crd) for crd in crds))
    return 0


def _cmd_crypto(args: argparse.Namespace) -> int:
    from tenantdb.crypto import DecryptionError, EncryptionKey, InvalidKeyError

    try:
        key = EncryptionKey(os.environ.get("ENCRYPTION_KEY", ""))
    except InvalidKeyError as exc:
        print(f"tenantdb crypto: {exc}", file=sys.stderr)
        return 2
    value = sys.stdin.read().rstrip("\r\n")
    if args.action == "encrypt":
        sys.stdout.write(key.encrypt(value) + "\n")
        return 0
    try:
        sys.stdout.write(key.decrypt(value) + "\n")
    except DecryptionError as exc:
        print(f"tenantdb crypto: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tenantdb.handlers.main import run_operator

    return run_operator(verbose=args.verbose)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from tenantdb.store.migrate import migrate_from_environment

    return asyncio.run(migrate_from_environment())


def _cmd_orphans(args: argparse.Namespace) -> int:
    from tenantdb.store.report import orphans_from_environment

    return asyncio.run(orphans_from_environment(as_json=args.json, disposition=args.disposition))


def _cmd_adopt(args: argparse.Namespace) -> int:
    from tenantdb.handlers.kube_login import kube_credentials
    from tenantdb.reconcile.adoption import adopt_from_environment

    return asyncio.run(
        adopt_from_environment(
            dry=args.dry_run,
            json_output=args.output == "json",
            login=kube_credentials,
            interval=args.progress_seconds,
            wait_ready=not args.no_wait,
            timeout=args.timeout,
        )
    )


def _cmd_describe(args: argparse.Namespace) -> int:
    from tenantdb.handlers.kube_login import kube_credentials
    from tenantdb.reconcile.describe import describe_from_environment

    return asyncio.run(
        describe_from_environment(
            args.scope, args.id, output=args.output, decisions=args.decisions, login=kube_credentials
        )
    )


def _cmd_rekey(args: argparse.Namespace) -> int:
    from tenantdb.handlers.rekey import rekey_from_environment

    if args.writes_per_second <= 0:
        print("tenantdb rekey: --writes-per-second must be positive", file=sys.stderr)
        return 2
    return asyncio.run(
        rekey_from_environment(
            writes_per_second=args.writes_per_second, dry_run=args.dry_run, kube_url=args.kube_api_url
        )
    )


def _cmd_emulator(args: argparse.Namespace) -> int:
    from tenantdb.testing.neon.server import serve_from_cli

    return serve_from_cli(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from tenantdb.testing.demo import run_demo

    return run_demo(args)


def build_parser(prog: str = "tenantdb") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Per-user and per-workspace Neon databases for an agent platform, as a "
        "Kubernetes operator.",
    )
    parser.add_argument("--version", action="version", version=f"tenantdb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator (configuration from the environment)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    migrate = commands.add_parser("migrate", help="create or upgrade the metadata DB tables")
    migrate.set_defaults(func=_cmd_migrate)

    orphans = commands.add_parser(
        "orphans", help="list the Neon projects the operator left behind (orphaned or retained)"
    )
    orphans.add_argument("--json", action="store_true", help="one JSON object per line")
    orphans.add_argument("--disposition", choices=["orphaned", "retained"], help="only these")
    orphans.set_defaults(func=_cmd_orphans)

    adopt = commands.add_parser(
        "adopt",
        help="switch a platform that made its own databases over: with --dry-run, say what would be "
        "adopted, created, left alone and what is inconsistent (writes nothing); without, create the "
        "resources the Sim sync would create, with progress",
    )
    adopt.add_argument(
        "--dry-run", action="store_true", help="read Sim's rows, env vars and Neon's projects; write nothing"
    )
    adopt.add_argument("--output", choices=["text", "json"], default="text", help="text (default) or JSON")
    adopt.add_argument(
        "--progress-seconds", type=float, default=10.0, help="seconds between progress lines (default 10)"
    )
    adopt.add_argument(
        "--no-wait", action="store_true", help="stop once everything exists, without waiting for Ready"
    )
    adopt.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop after this many seconds (exit 3; run again to go on)",
    )
    adopt.set_defaults(func=_cmd_adopt)

    describe = commands.add_parser(
        "describe",
        help="one screen about a user or workspace: resources, Neon project, compute, tier, spend "
        "and limit, suspended or not (why, since when), last sync, credentials, orphans, decisions",
    )
    describe.add_argument("scope", choices=["user", "workspace"])
    describe.add_argument("id", help="the user's or workspace's id in Sim")
    describe.add_argument("--output", "-o", choices=["text", "json"], default="text", help="text or json")
    describe.add_argument("--decisions", type=int, default=10, help="how many recent decisions (default 10)")
    describe.set_defaults(func=_cmd_describe)

    rekey = commands.add_parser(
        "rekey",
        help="re-encrypt every value the operator wrote with ENCRYPTION_KEY (after a key change; "
        "old keys in TENANTDB_PREVIOUS_ENCRYPTION_KEYS); run it again to resume",
    )
    rekey.add_argument(
        "--writes-per-second", type=float, default=20.0, help="pace of the rewrites (default 20)"
    )
    rekey.add_argument("--dry-run", action="store_true", help="count what would be rewritten, write nothing")
    rekey.add_argument(
        "--kube-api-url",
        default=None,
        help="a Kubernetes API without credentials (an emulator); default: in-cluster, else the kubeconfig",
    )
    rekey.set_defaults(func=_cmd_rekey)

    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions as YAML")
    crds.add_argument("--output-dir", help="write one file per CRD into this folder instead")
    crds.set_defaults(func=_cmd_crds)

    crypto = commands.add_parser(
        "crypto", help="encrypt or decrypt stdin with ENCRYPTION_KEY, Sim Studio's format"
    )
    crypto.add_argument("action", choices=["encrypt", "decrypt"])
    crypto.set_defaults(func=_cmd_crypto)

    emulator = commands.add_parser("emulator", help="serve an emulator of an outside API")
    emulators = emulator.add_subparsers(dest="emulator", required=True, metavar="API")
    neon = emulators.add_parser("neon", help="the Neon API v2, backed by a real PostgreSQL server")
    from tenantdb.testing.neon.options import add_emulator_arguments

    add_emulator_arguments(neon)
    neon.set_defaults(func=_cmd_emulator)

    demo = commands.add_parser(
        "demo", help="run the real operator against local emulators and show it work end to end"
    )
    demo.add_argument("--keep-going", action="store_true", help="leave everything running at the end")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Installed twice: as ``tenantdb`` and as the kubectl plugin ``kubectl-tenantdb``, which
    # kubectl runs for ``kubectl tenantdb ...``.
    plugin = os.path.basename(sys.argv[0]).startswith("kubectl-")
    args = build_parser("kubectl tenantdb" if plugin else "tenantdb").parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
