"""Kubernetes credentials: what kopf's logins find becomes what the operator's client sends, and the
operator runs without any Kubernetes client library (whose models alone cost ~100 MB RSS)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import kopf
import pytest
import yaml

from tenantdb.handlers.kube_login import connection_info, credentials_of, in_cluster_address, kube_credentials
from tenantdb.kube import KubeCredentials, KubeError

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nS3CR3T-KEY\n-----END PRIVATE KEY-----\n"


def test_a_service_account_login_becomes_a_bearer_token_and_the_ca_file() -> None:
    # What kopf.login_with_service_account returns in a pod.
    info = kopf.ConnectionInfo(
        server="https://kubernetes.default.svc",
        ca_path="/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        token="eyJhbGciOi.token",
        default_namespace="tenantdb-system",
    )
    credentials = credentials_of(info)
    assert credentials == KubeCredentials(
        server="https://kubernetes.default.svc",
        ca_path="/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        authorization="Bearer eyJhbGciOi.token",
    )
    assert "eyJhbGciOi" not in repr(credentials)


def test_in_a_pod_the_api_server_is_reached_at_the_service_address_the_kubelet_gives() -> None:
    info = kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="t")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_address(info, env).server == "https://10.96.0.1:443"
    env6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_address(info, env6).server == "https://[fd00::1]:443"
    assert in_cluster_address(info, {}).server == "https://kubernetes.default.svc"
    assert in_cluster_address(info, env).token == "t"


@pytest.fixture
def outside_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a developer's machine, even when the tests run in a pod (CI): no ServiceAccount."""
    monkeypatch.setattr(kopf, "login_with_service_account", lambda **_: None)


def test_kubeconfig_data_fields_are_decoded_to_pem_and_basic_auth_is_kopfs_header() -> None:
    encoded = base64.b64encode(PEM.encode()).decode()
    info = kopf.ConnectionInfo(
        server="https://10.0.0.1:6443",
        ca_data=encoded,
        certificate_data=encoded,
        private_key_data=KEY,  # PEM as it is is taken as well
        username="admin",
        password="pw",
        insecure=True,
    )
    credentials = credentials_of(info)
    assert credentials.ca_pem == PEM
    assert credentials.certificate_pem == PEM
    assert credentials.private_key_pem == KEY
    assert credentials.insecure
    assert credentials.authorization == "Basic " + base64.b64encode(b"admin:pw").decode()
    assert credentials.authorization not in repr(credentials)
    assert "S3CR3T-KEY" not in repr(credentials)


@pytest.mark.usefixtures("outside_a_pod")
async def test_the_kubeconfig_is_used_when_there_is_no_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://example:6443", "certificate-authority": "/ca"}}
        ],
        "users": [{"name": "u", "user": {"token": "t0k3n"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    info = connection_info()
    assert info is not None
    assert info.default_namespace == "ns"
    credentials = await kube_credentials()
    assert credentials.server == "https://example:6443"
    assert credentials.authorization == "Bearer t0k3n"
    assert credentials.ca_path == "/ca"


@pytest.mark.usefixtures("outside_a_pod")
async def test_no_credentials_at_all_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    with pytest.raises(KubeError, match="no Kubernetes credentials: not in a pod"):
        await kube_credentials()


@pytest.mark.usefixtures("outside_a_pod")
async def test_a_kubeconfig_without_a_current_context_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "users": [{"name": "u"}]}))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(KubeError, match="Current context is not set"):
        await kube_credentials()


def test_the_operator_imports_no_kubernetes_client_library() -> None:
    # kopf imports kubernetes_asyncio (and kubernetes) by itself whenever they are installed.
    code = (
        "import sys, tenantdb.cli, tenantdb.handlers.main;"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('kubernetes', 'pykube'))}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_client_key_given_as_data_is_on_disk_only_while_ssl_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime
    import os
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantdb")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    seen: list[tuple[str, int]] = []
    load = ssl.SSLContext.load_cert_chain

    def watching(
        self: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: None = None
    ) -> None:
        assert keyfile is not None
        seen.append((keyfile, os.stat(keyfile).st_mode & 0o777))
        load(self, certfile, keyfile)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", watching)
    credentials = KubeCredentials(
        server="https://example:6443",
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key_pem,
    )
    assert isinstance(credentials.ssl_context(), ssl.SSLContext)
    assert [mode for _, mode in seen] == [0o600]
    assert seen[0][0].startswith(str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # removed once loaded
