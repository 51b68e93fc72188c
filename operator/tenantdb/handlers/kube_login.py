"""Where the Kubernetes API is and who we are there: kopf's own logins, for kopf and for our client.

The in-cluster ServiceAccount first (``/var/run/secrets/kubernetes.io/serviceaccount``), else
a kubeconfig (``KUBECONFIG``, else ``~/.kube/config``, its current context): the order kopf's
default registry gives them, and the order the Kubernetes client libraries use. kopf and the
operator's own client (``tenantdb.kube``) log in through the same function, so they act as one
identity; both log in again when the API server answers 401, which reads a rotated
ServiceAccount token anew.

What kopf's logins read is what is supported: bearer tokens (``token``, an auth-provider's
cached ``access-token``), client certificates (paths or ``*-data``), basic auth, the cluster's
CA and ``insecure-skip-tls-verify``, ``proxy-url``. Exec plugins and ``tokenFile`` are not
(kopf without a client library does not run them either).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import kopf

from tenantdb.kube import KubeCredentials, KubeError

__all__ = [
    "connection_info",
    "credentials_of",
    "in_cluster_address",
    "kube_credentials",
    "login_in_cluster_or_kubeconfig",
]


def connection_info(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo | None:
    """The ServiceAccount's credentials when in a pod, else the kubeconfig's; ``None`` if neither.

    A kubeconfig that names no current context raises ``kopf.LoginError``.
    """
    settings = settings if settings is not None else kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings)
    if info is not None:
        return in_cluster_address(info, os.environ)
    return kopf.login_with_kubeconfig(settings=settings)


def in_cluster_address(info: kopf.ConnectionInfo, environ: Mapping[str, str]) -> kopf.ConnectionInfo:
    """The API server at the address the kubelet gives every pod, as client libraries reach it.

    kopf's ServiceAccount login names ``https://kubernetes.default.svc``, which needs cluster
    DNS; ``KUBERNETES_SERVICE_HOST``/``_PORT`` (the same Service, by its IP, which the API
    server's certificate names too) do not, and are what the operator used before.
    """
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return info
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return dataclasses.replace(info, server=f"https://{host}:{port}")


def _pem(data: str | bytes | None) -> str | None:
    """A kubeconfig's ``*-data`` (base64 of PEM) or PEM itself, as PEM text."""
    if data is None:
        return None
    text = data.decode("ascii") if isinstance(data, bytes) else data
    if text.lstrip().startswith("-----BEGIN "):
        return text
    return base64.b64decode(text).decode("ascii")


def _path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str | None:
    return None if path is None else os.fsdecode(path)


def credentials_of(info: kopf.ConnectionInfo) -> KubeCredentials:
    """kopf's ``ConnectionInfo`` as ``tenantdb.kube`` takes it (the same header kopf sends)."""
    if not info.server:
        raise kopf.LoginError("the Kubernetes credentials name no server")
    return KubeCredentials(
        server=info.server,
        ca_path=_path(info.ca_path),
        ca_pem=_pem(info.ca_data),
        insecure=bool(info.insecure),
        certificate_path=_path(info.certificate_path),
        certificate_pem=_pem(info.certificate_data),
        private_key_path=_path(info.private_key_path),
        private_key_pem=_pem(info.private_key_data),
        authorization=info.as_http_headers().get("Authorization"),
        proxy_url=info.proxy_url,
    )


async def kube_credentials() -> KubeCredentials:
    """The operator's client's ``Login``: read afresh on every call (the files are small)."""
    try:
        info = await asyncio.to_thread(connection_info)
        if info is None:
            raise kopf.LoginError(
                "no Kubernetes credentials: not in a pod with a ServiceAccount token, "
                "and no kubeconfig (KUBECONFIG or ~/.kube/config)"
            )
        return credentials_of(info)
    except kopf.LoginError as exc:  # our words or kopf's: no file content in them
        raise KubeError(f"logging in to the Kubernetes API failed: {exc}") from None
    except OSError as exc:  # a file named in the kubeconfig that cannot be read
        raise KubeError(f"logging in to the Kubernetes API failed: {exc.strerror}: {exc.filename}") from None


async def login_in_cluster_or_kubeconfig(
    *, settings: kopf.OperatorSettings, **_: Any
) -> kopf.ConnectionInfo | None:
    """kopf's login handler: the same credentials as ``kube_credentials``."""
    return await asyncio.to_thread(connection_info, settings)
