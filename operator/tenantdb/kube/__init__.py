"""Kubernetes writes the operator makes besides kopf's own: Secrets and immediate status.

The official ``kubernetes`` client is synchronous; this package uses its async port,
``kubernetes_asyncio``, so the event loop is never blocked. It is the only place that
imports it.
"""

from tenantdb.kube.client import KubeClient, KubeError, OwnerReference, SecretConflictError, SecretState
from tenantdb.kube.resources import CustomResources

__all__ = [
    "CustomResources",
    "KubeClient",
    "KubeError",
    "OwnerReference",
    "SecretConflictError",
    "SecretState",
]
