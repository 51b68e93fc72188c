"""A real Kubernetes API server on this machine: etcd + kube-apiserver (+ the garbage collector).

What Go operators call *envtest*: the real ``kube-apiserver`` and ``etcd`` binaries started as
plain processes on loopback, no kubelet and no nodes. Unlike the Kubernetes emulator
(``tenantdb.testing.kube``) it validates custom resources against their OpenAPI schema and
CEL rules, prunes unknown fields, serves ``kubectl explain`` and printer columns, authorizes
every request with RBAC and issues ServiceAccount tokens (the TokenRequest API).
``kube-controller-manager`` runs beside it when its binary is there, with the garbage
collector (``ownerReferences``) and namespace controllers only.

Binaries: ``KUBEBUILDER_ASSETS`` (controller-runtime's convention; ``setup-envtest use``
fills such a folder), else the folder ``make kube-assets`` builds them into. Usage::

    with KubeApiServer() as server:
        with server.client() as http:  # httpx, authenticated as cluster admin
            http.post("/api/v1/namespaces", json={"metadata": {"name": "demo"}})
        print(server.kubeconfig)  # for kubectl, kopf or the operator

Every process runs in a process group of its own and is killed with it on ``stop()``, at
interpreter exit and, when started from the main thread, when the Python process dies
(``PR_SET_PDEATHSIG``): a failed or killed test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import datetime
import ipaddress
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantdb.testing.postgres import free_port

__all__ = [
    "KUBE_VERSION",
    "AssetsNotFoundError",
    "ClientAccess",
    "KubeApiServer",
    "default_assets_cache",
    "find_kube_assets",
]

# The Kubernetes release `make kube-assets` builds (tools/kube-assets/go.mod pins the same).
KUBE_VERSION = "v1.37.2"

_REQUIRED = ("kube-apiserver", "etcd")
_GC_BINARY = "kube-controller-manager"


class AssetsNotFoundError(RuntimeError):
    """Neither ``KUBEBUILDER_ASSETS`` nor a ``make kube-assets`` build is available."""


def default_assets_cache() -> Path:
    """Where ``make kube-assets`` puts the binaries of ``KUBE_VERSION``."""
    root = os.environ.get("TENANTDB_KUBE_ASSETS_CACHE")
    if root:
        return Path(root) / KUBE_VERSION
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tenantdb" / "kube-assets" / KUBE_VERSION


def find_kube_assets() -> Path:
    """The folder holding ``kube-apiserver`` and ``etcd``; ``AssetsNotFoundError`` says how to get one."""
    explicit = os.environ.get("KUBEBUILDER_ASSETS")
    candidates = [Path(explicit)] if explicit else [default_assets_cache()]
    for folder in candidates:
        if all(os.access(folder / binary, os.X_OK) for binary in _REQUIRED):
            return folder
    where = f"KUBEBUILDER_ASSETS={explicit}" if explicit else str(candidates[0])
    raise AssetsNotFoundError(
        f"no kube-apiserver and etcd in {where}: run `make kube-assets` (needs Go) "
        "or point KUBEBUILDER_ASSETS at a folder from `setup-envtest use`"
    )


@dataclasses.dataclass(frozen=True)
class ClientAccess:
    """How to reach the API server as one identity: a client certificate or a bearer token."""

    server: str
    ca_path: Path
    cert_path: Path | None = None
    key_path: Path | None = None
    token: str | None = None

    def kubeconfig(self, user: str = "tenantdb-test") -> dict[str, Any]:
        """A kubeconfig document (one cluster, one user, one current context)."""
        credentials: dict[str, Any] = {}
        if self.token is not None:
            credentials["token"] = self.token
        if self.cert_path is not None and self.key_path is not None:
            credentials["client-certificate"] = str(self.cert_path)
            credentials["client-key"] = str(self.key_path)
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
            "current-context": "local",
        }

    def write_kubeconfig(self, path: Path, user: str = "tenantdb-test") -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig(user)))
        path.chmod(0o600)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the server's CA and, for certificate access, presents the client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if self.cert_path is not None and self.key_path is not None:
            context.load_cert_chain(str(self.cert_path), str(self.key_path))
        return context

    def _httpx_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"base_url": self.server, "verify": self.ssl_context(), "timeout": 30}
        if self.token is not None:
            options["headers"] = {"Authorization": f"Bearer {self.token}"}
        return options

    def client(self) -> httpx.Client:
        return httpx.Client(**self._httpx_options())

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._httpx_options())


# --- certificates ----------------------------------------------------------------------------------


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclasses.dataclass(frozen=True)
class _Pki:
    ca: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public: Path
    sa_private: Path


def _write_pki(folder: Path) -> _Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantdb-test-ca")])
    ca = _certificate(ca_name, ca_key, issuer=None)
    pki = _Pki(
        ca=folder / "ca.crt",
        serving_cert=folder / "apiserver.crt",
        serving_key=folder / "apiserver.key",
        admin_cert=folder / "admin.crt",
        admin_key=folder / "admin.key",
        sa_public=folder / "sa.pub",
        sa_private=folder / "sa.key",
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        issuer=(ca_name, ca_key),
        server=True,
    )
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.serving_key, serving_key)
    # Cluster admin: RBAC's bootstrap binds the group system:masters to cluster-admin.
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _certificate(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "tenantdb-test-admin"),
            ]
        ),
        admin_key,
        issuer=(ca_name, ca_key),
    )
    pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.admin_key, admin_key)
    # The ServiceAccount token signing key (RS256, what every Kubernetes client expects).
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_private, sa_key)
    pki.sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


# --- processes -------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_LIVE: weakref.WeakSet[KubeApiServer] = weakref.WeakSet()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


class KubeApiServer:
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback, in a temporary folder.

    ``admin`` reaches it as cluster admin (a client certificate in ``system:masters``);
    ``kubeconfig`` is that access as a file; ``token_for`` issues a ServiceAccount token
    through the TokenRequest API, ``access_for_token`` turns it into a ``ClientAccess``.
    """

    def __init__(
        self,
        *,
        assets: Path | None = None,
        garbage_collector: bool = True,
        start_timeout: float = 120.0,
        extra_apiserver_args: list[str] | None = None,
    ) -> None:
        self.assets = assets
        self.garbage_collector = garbage_collector
        self.start_timeout = start_timeout
        self.extra_apiserver_args = list(extra_apiserver_args or [])
        self.folder: Path | None = None
        self.port: int | None = None
        self._pki: _Pki | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._lock = threading.Lock()

    # -- access ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the API server is not started")
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin(self) -> ClientAccess:
        assert self._pki is not None, "the API server is not started"
        return ClientAccess(
            server=self.url,
            ca_path=self._pki.ca,
            cert_path=self._pki.admin_cert,
            key_path=self._pki.admin_key,
        )

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig file for the admin identity (``kubectl --kubeconfig``)."""
        assert self.folder is not None, "the API server is not started"
        path = self.folder / "admin.kubeconfig"
        if not path.exists():
            self.admin.write_kubeconfig(path, user="admin")
        return path

    @property
    def has_garbage_collector(self) -> bool:
        return _GC_BINARY in self._processes

    def client(self) -> httpx.Client:
        """An ``httpx.Client`` authenticated as cluster admin, ``base_url`` the server."""
        return self.admin.client()

    def async_client(self) -> httpx.AsyncClient:
        return self.admin.async_client()

    def token_for(self, service_account: str, namespace: str, *, expiration_seconds: int = 3600) -> str:
        """A token for an existing ServiceAccount, from the TokenRequest API (as the kubelet gets one)."""
        with self.client() as http:
            response = http.post(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
                json={
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": expiration_seconds},
                },
            )
            response.raise_for_status()
            token: str = response.json()["status"]["token"]
            return token

    def access_for_token(self, token: str) -> ClientAccess:
        assert self._pki is not None, "the API server is not started"
        return ClientAccess(server=self.url, ca_path=self._pki.ca, token=token)

    def log(self, component: str) -> str:
        """What ``component`` (``etcd``, ``kube-apiserver``, ``kube-controller-manager``) printed."""
        assert self.folder is not None
        path = self.folder / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> KubeApiServer:
        assets = self.assets or find_kube_assets()
        self.folder = Path(tempfile.mkdtemp(prefix="tenantdb-kube-"))
        _LIVE.add(self)
        try:
            self._pki = _write_pki(self.folder / "pki")
            etcd_url = self._start_etcd(assets)
            self._start_apiserver(assets, etcd_url)
            self._wait_ready()
            if self.garbage_collector and os.access(assets / _GC_BINARY, os.X_OK):
                self._start_controller_manager(assets)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process (controller manager, API server, then etcd) and remove the folder."""
        with self._lock:
            for name in (_GC_BINARY, "kube-apiserver", "etcd"):
                process = self._processes.pop(name, None)
                if process is not None:
                    _kill_group(process, grace=10)
            for log in self._logs.values():
                log.close()
            self._logs.clear()
            if self.folder is not None and not os.environ.get("TENANTDB_KEEP_KUBE_FOLDER"):
                shutil.rmtree(self.folder, ignore_errors=True)
            _LIVE.discard(self)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<KubeApiServer {self.url if self.port else 'stopped'}>"

    # -- the components -------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        assert self.folder is not None
        log = (self.folder / f"{name}.log").open("ab")
        self._logs[name] = log
        on_main_thread = threading.current_thread() is threading.main_thread()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a whole
            # The death signal follows the *thread* that forked: only from the main thread.
            preexec_fn=_die_with_parent if on_main_thread else None,
            cwd=self.folder,
        )
        self._processes[name] = process
        return process

    def _check_alive(self, name: str) -> None:
        process = self._processes[name]
        if process.poll() is not None:
            tail = self.log(name)[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def _start_etcd(self, assets: Path) -> str:
        assert self.folder is not None
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        self._spawn(
            "etcd",
            [
                str(assets / "etcd"),
                "--name=default",
                f"--data-dir={self.folder / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",  # throwaway data: durability costs seconds per test
                "--log-level=warn",
            ],
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self._check_alive("etcd")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{client_url}/health", timeout=2).status_code == 200:
                    return client_url
            time.sleep(0.2)
        raise TimeoutError(f"etcd was not healthy within {self.start_timeout:.0f} s")

    def _start_apiserver(self, assets: Path, etcd_url: str) -> None:
        assert self.folder is not None
        assert self._pki is not None
        self.port = free_port()
        pki = self._pki
        self._spawn(
            "kube-apiserver",
            [
                str(assets / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",  # the kubernetes Service may not point at loopback
                f"--secure-port={self.port}",
                f"--cert-dir={self.folder / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca}",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_public}",
                f"--service-account-signing-key-file={pki.sa_private}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",  # fewer moving parts on a small machine
                *self.extra_apiserver_args,
            ],
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        with self.client() as http:
            while time.monotonic() < deadline:
                self._check_alive("kube-apiserver")
                try:
                    response = http.get("/readyz", timeout=5)
                    if response.status_code == 200:
                        return
                    last = response.text[-500:]
                except httpx.HTTPError as exc:
                    last = str(exc)
                time.sleep(0.3)
        raise TimeoutError(f"kube-apiserver was not ready within {self.start_timeout:.0f} s: {last}")

    def _start_controller_manager(self, assets: Path) -> None:
        self._spawn(
            _GC_BINARY,
            [
                str(assets / _GC_BINARY),
                f"--kubeconfig={self.kubeconfig}",
                "--controllers=garbagecollector,namespace",
                "--leader-elect=false",
                "--secure-port=0",
            ],
        )
        time.sleep(0.5)
        self._check_alive(_GC_BINARY)
