"""Read Kubernetes manifests (multi-document YAML) as kubectl would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_manifests"]


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """Every document of every ``*.yaml`` in ``path`` (a folder or a file), in name order."""
    documents: list[dict[str, Any]] = []
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    for file in files:
        if file.name == "kustomization.yaml":
            continue
        documents += [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
    return documents
