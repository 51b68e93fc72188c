"""The store's public surface, and its independence from the crypto module."""

from __future__ import annotations

import ast
from pathlib import Path

import tenantdb.store
from tenantdb.crypto import EncryptionKey
from tenantdb.store import Cipher

from .conftest import KEY_HEX

STORE_DIR = Path(tenantdb.store.__file__).parent


def test_exports() -> None:
    assert sorted(tenantdb.store.__all__) == [
        "AdoptionInventory",
        "BudgetRow",
        "Cipher",
        "DatabaseRow",
        "DecisionRow",
        "EnvValue",
        "Fingerprint",
        "MetadataStore",
        "OrphanRow",
        "RecordedDatabase",
        "SimSnapshot",
        "SimWorkspace",
        "SimWorkspaceRow",
        "StoreError",
        "StoreIntegrityError",
        "StoreSchemaError",
        "StoreTenantNotFoundError",
        "StoreUnavailableError",
        "TenantRow",
        "migrate_database",
    ]
    for name in tenantdb.store.__all__:
        assert getattr(tenantdb.store, name) is not None


def test_encryption_key_is_a_cipher() -> None:
    cipher: Cipher = EncryptionKey(KEY_HEX)  # checked by mypy; round trip checked here
    assert cipher.decrypt(cipher.encrypt("x")) == "x"


def test_the_store_imports_neither_crypto_nor_cryptography() -> None:
    """store and crypto are independent layers: the cipher comes in through a Protocol."""
    for path in STORE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("tenantdb.crypto", "cryptography")), f"{path.name} imports {name}"


def test_the_error_tree_does_not_need_psycopg() -> None:
    """Reconcilers catch StoreError without importing the driver (tenantdb.store.errors)."""
    tree = ast.parse((STORE_DIR / "errors.py").read_text())
    imports = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert not any("psycopg" in line for line in imports)
