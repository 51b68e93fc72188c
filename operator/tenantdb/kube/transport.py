"""The HTTP connection to the Kubernetes API: one ``httpx`` client, its credentials, re-login on 401.

Credentials come from outside this package (``KubeCredentials``, built by the handlers from
kopf's own logins: the in-cluster ServiceAccount, else a kubeconfig), so that the operator
needs no Kubernetes client library: the generated models of one cost ~100 MB of memory.

A ServiceAccount token rotates (the kubelet rewrites the projected file; the old token stops
working when it expires). An answer of HTTP 401 therefore makes the connection log in again
(the ``login`` callable: the token file is read anew) and send the request once more. A new
token is only a new header; new TLS material (a renewed client certificate in a kubeconfig)
gets a new connection pool, and the old one is closed once nothing can still be using it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx

__all__ = ["KubeCredentials", "KubeError", "KubeHttp", "Login"]

logger = logging.getLogger(__name__)

# Re-login at most this often: a token that the server keeps refusing (revoked, wrong RBAC
# subject) must not turn every request into a login.
RELOGIN_INTERVAL_SECONDS = 10.0
# A replaced connection pool is closed when a later re-login finds it older than this: no
# request on it can still be running (every request is bounded well below).
_RETIRED_POOL_GRACE_SECONDS = 600.0
DEFAULT_TIMEOUT_SECONDS = 60.0
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """A Kubernetes API call failed. The message carries the status, never object data."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class KubeCredentials:
    """Where the API server is and how to prove who we are (what a kubeconfig user holds).

    ``authorization`` is the whole header value (``Bearer <token>``, ``Basic ...``). PEM data
    is given as text (already decoded from a kubeconfig's base64 ``*-data`` fields). Nothing
    secret appears in ``repr()``.
    """

    server: str
    ca_path: str | None = None
    ca_pem: str | None = None
    insecure: bool = False
    certificate_path: str | None = None
    certificate_pem: str | None = dataclasses.field(default=None, repr=False)
    private_key_path: str | None = None
    private_key_pem: str | None = dataclasses.field(default=None, repr=False)
    authorization: str | None = dataclasses.field(default=None, repr=False)
    proxy_url: str | None = None

    def same_connection(self, other: KubeCredentials) -> bool:
        """Everything but the ``Authorization`` header equal: the same pool can serve both."""
        return dataclasses.replace(self, authorization=None) == dataclasses.replace(other, authorization=None)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What ``httpx`` verifies the server with (and presents as a client certificate)."""
        if not self.server.startswith("https:"):
            return False
        context = ssl.create_default_context(cafile=self.ca_path, cadata=self.ca_pem)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        has_certificate = self.certificate_path or self.certificate_pem
        has_key = self.private_key_path or self.private_key_pem
        if has_certificate and has_key:
            with (
                _pem_file(self.certificate_path, self.certificate_pem) as certfile,
                _pem_file(self.private_key_path, self.private_key_pem) as keyfile,
            ):
                context.load_cert_chain(certfile=certfile, keyfile=keyfile)
        return context


@contextlib.contextmanager
def _pem_file(path: str | None, pem: str | None) -> Iterator[str]:
    """``path`` as it is, or ``pem`` in a private temporary file for as long as ``ssl`` reads it.

    Python's ``ssl`` loads a client certificate only from files; the key is in the file for
    the moment of ``load_cert_chain`` (mode 0600, removed right after), then only in memory.
    """
    if path is not None:
        yield path
        return
    assert pem is not None
    fd, name = tempfile.mkstemp(prefix="tenantdb-kube-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(pem)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


Login = Callable[[], Awaitable[KubeCredentials]]


@dataclasses.dataclass
class _Pool:
    client: httpx.AsyncClient
    credentials: KubeCredentials


class KubeHttp:
    """Requests to one API server; the answers come back whatever their status (see ``check``)."""

    def __init__(
        self,
        credentials: KubeCredentials,
        *,
        login: Login | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._login = login
        self._timeout = timeout_seconds
        self._pool = _Pool(self._client_for(credentials), credentials)
        self._retired: list[tuple[float, httpx.AsyncClient]] = []
        self._last_login = time.monotonic()
        self._login_lock = asyncio.Lock()
        self._closed = False

    @property
    def server(self) -> str:
        return self._pool.credentials.server

    def _client_for(self, credentials: KubeCredentials) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=credentials.server.rstrip("/"),
            verify=credentials.ssl_context(),
            proxy=credentials.proxy_url,
            # Never the environment's HTTPS_PROXY (set for Neon's egress, say): like kopf's
            # own client, the API server is reached as the credentials say.
            trust_env=False,
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
        )

    async def close(self) -> None:
        self._closed = True
        clients = [self._pool.client, *(client for _, client in self._retired)]
        self._retired.clear()
        for client in clients:
            await client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request (again once, after a re-login, when it is refused with 401).

        A request that cannot be sent or answered (connection refused, timeout) is a
        ``KubeError`` without a status, ``action`` naming what was being done.
        """
        content = None if body is None else json.dumps(body).encode("utf-8")
        pool = self._pool
        response = await self._send(pool, method, path, action, params, content, content_type, timeout)
        if response.status_code == 401 and await self._login_again(pool):
            response = await self._send(
                self._pool, method, path, action, params, content, content_type, timeout
            )
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        action: str,
        params: Mapping[str, str | int],
        timeout: httpx.Timeout,
    ) -> AsyncIterator[httpx.Response]:
        """A GET whose answer is read as it comes (a watch), closed on leaving the block.

        The answer is a success (anything else raises ``KubeError``); a 401 logs in again and
        opens it once more, as ``request`` does.
        """
        pool = self._pool
        response = await self._open(pool, path, action, params, timeout)
        if response.status_code == 401 and await self._login_again(pool):
            await response.aclose()
            response = await self._open(self._pool, path, action, params, timeout)
        try:
            check(action, response)
            yield response
        finally:
            await response.aclose()

    async def _open(
        self, pool: _Pool, path: str, action: str, params: Mapping[str, str | int], timeout: httpx.Timeout
    ) -> httpx.Response:
        request = pool.client.build_request(
            "GET", path, params=dict(params), headers=self._headers(pool, None), timeout=timeout
        )
        try:
            return await pool.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(action, exc) from None

    @staticmethod
    def _headers(pool: _Pool, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if pool.credentials.authorization:
            headers["Authorization"] = pool.credentials.authorization
        return headers

    async def _send(
        self,
        pool: _Pool,
        method: str,
        path: str,
        action: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        content_type: str,
        timeout: float | None,
    ) -> httpx.Response:
        try:
            return await pool.client.request(
                method,
                path,
                params=dict(params) if params else None,
                content=content,
                headers=self._headers(pool, None if content is None else content_type),
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            raise transport_error(action, exc) from None

    async def _login_again(self, refused: _Pool) -> bool:
        """New credentials after a 401 on ``refused``: whether the request is worth sending again.

        Requests refused together wait for one login (the lock), then all use its result.
        """
        async with self._login_lock:
            if self._pool is not refused:
                return True  # a concurrent request has logged in again meanwhile
            if self._login is None or self._closed:
                return False
            if time.monotonic() - self._last_login < RELOGIN_INTERVAL_SECONDS:
                return False
            self._last_login = time.monotonic()
            try:
                credentials = await self._login()
            except Exception as exc:
                # The type only: a parser's message may quote the file it failed on (a token).
                logger.warning("logging in to the Kubernetes API again failed: %s", type(exc).__name__)
                return False
            if credentials == refused.credentials:
                return False  # nothing new: the 401 stands
            if credentials.same_connection(refused.credentials):
                self._pool = _Pool(refused.client, credentials)
            else:
                try:
                    client = self._client_for(credentials)
                except OSError as exc:  # ssl.SSLError too: a CA or certificate that does not load
                    logger.warning("the Kubernetes API's new TLS credentials do not load: %s", exc)
                    return False
                self._pool = _Pool(client, credentials)
                await self._close_retired()
                self._retired.append((time.monotonic(), refused.client))
            logger.info("logged in to the Kubernetes API again after HTTP 401")
            return True

    async def _close_retired(self) -> None:
        now = time.monotonic()
        keep: list[tuple[float, httpx.AsyncClient]] = []
        for retired_at, client in self._retired:
            if now - retired_at > _RETIRED_POOL_GRACE_SECONDS:
                await client.aclose()
            else:
                keep.append((retired_at, client))
        self._retired = keep


def transport_error(action: str, exc: httpx.HTTPError) -> KubeError:
    """A request that was not answered: what failed to connect or to arrive, never what was sent."""
    detail = str(exc) if isinstance(exc, httpx.TransportError) and str(exc) else ""
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return KubeError(f"{action} failed: {reason}")


def check(action: str, response: httpx.Response) -> None:
    """Raise ``KubeError`` for an answer that is not a success.

    Only the status and its reason phrase travel on: the body of an answer about a Secret may
    echo its data.
    """
    if response.is_success:
        return
    raise KubeError(
        f"{action} failed: HTTP {response.status_code} {response.reason_phrase}".rstrip(),
        status=response.status_code,
    )


def json_object(action: str, response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object (after ``check``)."""
    check(action, response)
    try:
        parsed = response.json()
    except ValueError:
        raise KubeError(f"{action} failed: the answer is not JSON", status=response.status_code) from None
    if not isinstance(parsed, dict):
        raise KubeError(f"{action} failed: the answer is not an object", status=response.status_code)
    return parsed
