"""Where the contract tests find Neon's spec (see ``spec.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract import spec as spec_module


def test_an_explicit_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    explicit = tmp_path / "neon.yaml"
    explicit.write_text("openapi: 3.0.3\n")
    monkeypatch.setenv("NEON_OPENAPI_SPEC", str(explicit))
    assert spec_module.find_spec_file() == (explicit, "")


def test_a_missing_explicit_path_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEON_OPENAPI_SPEC", str(tmp_path / "absent.yaml"))
    path, reason = spec_module.find_spec_file()
    assert path is None
    assert "absent.yaml" in reason


def test_paths_name_operations_with_or_without_the_prefix(neon_spec: spec_module.NeonSpec) -> None:
    for path in ("/projects/p-1", "/api/v2/projects/p-1", "http://127.0.0.1:8181/api/v2/projects/p-1"):
        assert neon_spec.operation_of("GET", path) == "getProject"
    with pytest.raises(spec_module.ContractViolation, match="no such operation"):
        neon_spec.operation_of("PUT", "/projects")
