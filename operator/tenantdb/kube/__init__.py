"""Kubernetes writes the operator makes besides kopf's own: Secrets, events and immediate status.

Plain HTTP (``httpx``, async) against the API server's REST paths: no Kubernetes client
library, whose generated models alone cost ~100 MB of memory (and, once installed, kopf
imports it too). Credentials come in as ``KubeCredentials`` through a ``Login``; the handlers
build them from kopf's own logins.
"""

from tenantdb.kube.client import KubeClient, OwnerReference, SecretConflictError, SecretState
from tenantdb.kube.resources import CustomResources
from tenantdb.kube.transport import KubeCredentials, KubeError, KubeHttp, Login

__all__ = [
    "CustomResources",
    "KubeClient",
    "KubeCredentials",
    "KubeError",
    "KubeHttp",
    "Login",
    "OwnerReference",
    "SecretConflictError",
    "SecretState",
]
