"""``tenantdb describe user|workspace ID`` (also ``kubectl tenantdb describe ...``).

Configuration as the operator's (``TENANTDB_METADATA_DATABASE_URL``, ``TENANTDB_NAMESPACES``,
``TENANTDB_PROJECT_NAME_PREFIX``); Kubernetes as kubectl reaches it (a kubeconfig, or the
ServiceAccount in a pod), through the ``login`` the CLI passes in. Without a metadata DB URL the
Kubernetes side is shown and the report says what is missing. Nothing is written anywhere,
and no Neon call is made. Nothing printed holds a secret: the errors are the clients' own,
which never repeat a URL, a token or a password.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from pydantic import ValidationError

from tenantdb.api import Tenant
from tenantdb.config import Settings
from tenantdb.kube import KubeClient, KubeError, Login
from tenantdb.kube.client import list_pages
from tenantdb.reconcile.describe.gather import SCOPES, describe_tenant
from tenantdb.reconcile.describe.report import TenantReport, as_json, as_text
from tenantdb.store import MetadataStore, StoreError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "describe_from_environment",
    "describe_with",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the API server could not be read
EXIT_CONFIG: Final = 2  # configuration missing or invalid, as for the other commands
EXIT_NOT_FOUND: Final = 3  # nothing at all is known about that user or workspace

_GLOB = set("*?[")


class _NoCipher:
    """``describe`` decrypts nothing: the store's cipher, refusing to be used."""

    def encrypt(self, plaintext: str) -> str:
        raise ValueError("tenantdb describe writes nothing")

    def decrypt(self, stored: str) -> str:
        raise ValueError("tenantdb describe reads no connection string")


class _Objects:
    """Our kinds' objects, a page at a time: in the namespaces the operator watches when they are
    names, else the whole cluster."""

    def __init__(self, kube: KubeClient, namespaces: Sequence[str]) -> None:
        self._kube = kube
        exact = bool(namespaces) and not any(_GLOB & set(ns) for ns in namespaces)
        self._namespaces: list[str | None] = list(namespaces) if exact else [None]

    async def list_objects(self, plural: str) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for namespace in self._namespaces:
            async for page in list_pages(self._kube.http, plural=plural, namespace=namespace, timeout=30.0):
                found.extend(page)
        return found


def _known(report: TenantReport) -> bool:
    return bool(report.resources or report.budget or report.row or report.orphans or report.decisions)


async def describe_with(
    settings: Settings,
    tenant: Tenant,
    *,
    login: Login | None = None,
    kube_url: str | None = None,
    decisions: int = 10,
    problems: TextIO | None = None,
) -> TenantReport:
    """The report, with clients opened for it and closed after (``KubeError`` when the API
    server cannot be read; a metadata DB that cannot be reached is said in the report)."""
    kube = await KubeClient.connect(host=kube_url, login=login, timeout_seconds=30.0)
    store: MetadataStore | None = None
    unreachable: list[str] = []
    try:
        url = settings.metadata_database_url.get_secret_value().strip()
        if url:
            try:
                store = await MetadataStore.open(url, cipher=_NoCipher(), max_size=1)
            except StoreError as exc:
                unreachable.append(f"the metadata DB could not be reached: {exc}")
        report = await describe_tenant(
            tenant,
            kube=_Objects(kube, settings.namespaces),
            store=store,
            project_prefix=settings.project_name_prefix,
            decisions=decisions,
        )
    finally:
        if store is not None:
            await store.close()
        await kube.close()
    if unreachable:  # not "not configured": configured, and down
        report = dataclasses.replace(
            report, problems=[*unreachable, *(p for p in report.problems if "not configured" not in p)]
        )
    return report


async def describe_from_environment(
    scope: str,
    tenant_id: str,
    *,
    output: str = "text",
    decisions: int = 10,
    login: Login | None = None,
    kube_url: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Print the report; the exit code says how it went (``EXIT_*``)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        # The key decrypts nothing here: an on-call person needs no copy of Sim's key.
        settings = Settings(encryption_key="unused by tenantdb describe")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        print(f"tenantdb describe: invalid configuration: {problems}", file=err)
        return EXIT_CONFIG
    tenant = Tenant(SCOPES[scope], tenant_id)
    try:
        report = await describe_with(settings, tenant, login=login, kube_url=kube_url, decisions=decisions)
    except KubeError as exc:
        print(f"tenantdb describe: {exc}", file=err)
        return EXIT_FAILED
    if output == "json":
        out.write(json.dumps(as_json(report), indent=2) + "\n")
    else:
        out.write(as_text(report))
    if not _known(report):
        print(f"tenantdb describe: nothing is known about {tenant.label}", file=err)
        return EXIT_NOT_FOUND
    return EXIT_OK
