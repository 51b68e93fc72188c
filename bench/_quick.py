"""What every benchmark shares: quick defaults or ``--full``, where its result goes, the commit.

``make bench`` runs every benchmark with its quick defaults (a minute or two each); ``--full``
selects the full-size values (30,000 tenants and the like) that the committed results in
``bench/results/*.json`` were measured with. An option given on the command line wins over
either set of defaults.

Quick runs write ``bench/results/quick/<name>.json`` (ignored by git), full runs
``bench/results/<name>.json``; ``--output`` names another file in both cases. Every result
records the commit it ran on (``commit``; with ``uncommitted_changes`` when the tree differed
from it).

Not a benchmark: ``make bench`` skips files whose name starts with ``_``.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
QUICK_RESULTS = RESULTS / "quick"


def parse(
    parser: argparse.ArgumentParser,
    full: Mapping[str, Any],
    argv: Sequence[str] | None = None,
    *,
    implied_by: Sequence[str] = (),
) -> argparse.Namespace:
    """Add ``--full`` to ``parser`` and parse; with it, ``full`` replaces the quick defaults.

    ``implied_by``: options (their ``dest``) that select the full size too when given."""
    sizes = ", ".join(
        f"--{key.replace('_', '-')} {'unset' if value is None else value}" for key, value in full.items()
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"full size ({sizes or 'the defaults already are'}): the result goes to bench/results/, "
        "not bench/results/quick/",
    )
    args = parser.parse_args(argv)
    args.full = args.full or any(getattr(args, dest) is not None for dest in implied_by)
    if args.full:
        parser.set_defaults(**full)
        args = parser.parse_args(argv)
        args.full = True
    return args


def output(args: argparse.Namespace, name: str) -> Path:
    """``--output`` if given, else ``bench/results/<name>`` (full) or ``bench/results/quick/<name>``."""
    chosen = getattr(args, "output", None)
    path = Path(chosen) if chosen is not None else (RESULTS if args.full else QUICK_RESULTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def commit() -> dict[str, Any]:
    """The commit this tree is at (``git rev-parse --short HEAD``), and whether it differs from it."""

    def git(*words: str) -> str:
        done = subprocess.run(
            ["git", *words], capture_output=True, text=True, check=False, cwd=Path(__file__).parent
        )
        return done.stdout.strip()

    # What runs: the operator's code and the benchmarks (not the results they write).
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "../operator", ".", ":!results")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": bool(changed)}
