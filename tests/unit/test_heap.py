"""Freed memory goes back to the operating system (handlers/heap.py)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from tenantdb.handlers.heap import heap_trimmer


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_inside_the_heap_is_given_back() -> None:
    trim = heap_trimmer()
    assert trim is not None
    trim()
    # Chunks of a few KB come from malloc's heap (not pymalloc, not mmap): freed, glibc keeps
    # them, except for what sits at the top. The last one stays alive to hold the top in place.
    chunks = [bytearray(4000) for _ in range(40_000)]
    keeper = bytearray(4000)
    grown = _resident_mb()
    del chunks
    kept = _resident_mb()
    trim()
    trimmed = _resident_mb()
    assert kept - trimmed > 100, (
        f"{grown:.0f} MB grown, {kept:.0f} MB after free, {trimmed:.0f} MB after trim"
    )
    assert keeper


def test_kopf_s_copy_of_the_memo_is_the_runtime_itself() -> None:
    """kopf copies the memo once per object; the runtime is shared clients, one for all."""
    from tenantdb.config import Settings
    from tenantdb.crypto import EncryptionKey
    from tenantdb.handlers.runtime import Runtime
    from tenantdb.metrics import Metrics

    settings = Settings(encryption_key="0" * 64, neon_api_key="k", metadata_database_url="postgresql://h/db")
    runtime = Runtime(settings=settings, cipher=EncryptionKey("0" * 64), metrics=Metrics())
    assert copy.copy(runtime) is runtime
