"""Neon's official API contract for tests: find it, load it once, check traffic against it.

Usage (the ``neon_spec`` fixture of ``tests/contract/conftest.py`` gives the same object)::

    from tests.contract.spec import load_spec

    spec = load_spec()   # skips the test (pytest.skip) with the reason if the spec is unavailable

    # one side at a time; paths may be "/projects/x", "/api/v2/projects/x" or a full URL
    spec.check_request("POST", "/projects", body={"project": {"name": "n"}})
    spec.check_response("GET", "/projects/x", status=404, body={"code": "", "message": "no"})
    spec.check_response("GET", "/projects", query=[("limit", "5")], status=200, body=page)

    # or a whole httpx exchange: the request that was sent and the response received
    spec.check_exchange(response)                        # both sides
    spec.check_exchange(response, check_request=False)   # e.g. a deliberately unauthenticated call

    spec.operation_of("GET", "/projects/x")  # -> "getProject" (the spec's operationId)

Every check raises :class:`ContractViolation` (an ``AssertionError``) naming the operation,
the status and where the schema was broken. Messages never quote the offending values,
so no password or connection string from a response can leak into test output.

Where the spec comes from, first found wins:

1. ``$NEON_OPENAPI_SPEC`` (a path to the YAML file);
2. ``../shared/reference/neon-api-v2.openapi.yaml`` relative to the repository root;
3. ``.cache/neon-spec/public-v2-for-users.gen.yaml`` (cached by step 4 on an earlier run);
4. ``npm pack @neondatabase/api-client@2.7.3`` into ``.cache/neon-spec/`` (git-ignored),
   unpacking ``package/public-v2-for-users.gen.yaml``.

If none works the test is skipped with the reason (CI must always find it).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import ImmutableMultiDict

__all__ = ["ContractViolation", "NeonSpec", "QueryParams", "find_spec_file", "load_spec"]

PACKAGE = "@neondatabase/api-client@2.7.3"
SPEC_IN_PACKAGE = "package/public-v2-for-users.gen.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEC = REPO_ROOT.parent / "shared" / "reference" / "neon-api-v2.openapi.yaml"
CACHE_DIR = REPO_ROOT / ".cache" / "neon-spec"
CACHED_SPEC = CACHE_DIR / "public-v2-for-users.gen.yaml"

_HOST_URL = "https://console.neon.tech"
_API_PREFIX = "/api/v2"
_NPM_TIMEOUT_SECONDS = 180
_MAX_DETAIL = 300

QueryParams = Mapping[str, str] | Sequence[tuple[str, str]]
"""Query parameters: a mapping, or pairs (a name may repeat: ``[("metrics", "a"), ("metrics", "b")]``)."""


class ContractViolation(AssertionError):
    """A request or response that the Neon API spec does not allow."""


def _npm_pack() -> tuple[Path | None, str]:
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [npm, "pack", PACKAGE, "--pack-destination", str(CACHE_DIR), "--silent"],
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"npm pack {PACKAGE} timed out"
    if result.returncode != 0:
        return None, f"npm pack {PACKAGE} failed: {result.stderr.strip()[-_MAX_DETAIL:]}"
    tarballs = sorted(CACHE_DIR.glob("neondatabase-api-client-*.tgz"))
    if not tarballs:
        return None, f"npm pack {PACKAGE} left no tarball in {CACHE_DIR}"
    with tarfile.open(tarballs[-1]) as archive:
        member = archive.extractfile(SPEC_IN_PACKAGE)
        if member is None:
            return None, f"{SPEC_IN_PACKAGE} is missing from {tarballs[-1].name}"
        CACHED_SPEC.write_bytes(member.read())
    return CACHED_SPEC, ""


def find_spec_file() -> tuple[Path | None, str]:
    """The spec file, or None and why none was found."""
    if explicit := os.environ.get("NEON_OPENAPI_SPEC"):
        path = Path(explicit)
        return (path, "") if path.is_file() else (None, f"NEON_OPENAPI_SPEC={explicit} is not a file")
    for candidate in (SHARED_SPEC, CACHED_SPEC):
        if candidate.is_file():
            return candidate, ""
    path, reason = _npm_pack()
    if path is None:
        return None, f"Neon API spec unavailable: not at {SHARED_SPEC} nor {CACHED_SPEC}, and {reason}"
    return path, ""


def _string_keys(node: Any) -> Any:
    # YAML reads response codes (``200:``) as integers; OpenAPI wants strings.
    if isinstance(node, dict):
        return {str(key): _string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(item) for item in node]
    return node


def _api_path(path_or_url: str) -> str:
    """``/projects/x`` from ``/projects/x``, ``/api/v2/projects/x`` or ``http://h/api/v2/projects/x``."""
    path = urlsplit(path_or_url).path if "://" in path_or_url else path_or_url.split("?", 1)[0]
    if _API_PREFIX in path:
        path = path[path.index(_API_PREFIX) + len(_API_PREFIX) :]
    return path if path.startswith("/") else "/" + path


def _pairs(query: QueryParams | None) -> list[tuple[str, str]]:
    if query is None:
        return []
    return list(query.items()) if isinstance(query, Mapping) else [(str(k), str(v)) for k, v in query]


def _describe(exc: Exception) -> str:
    """Where and how a value broke the schema, never the value itself."""
    reasons: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        schema_errors = getattr(current, "schema_errors", None) or ()
        for error in schema_errors:
            where = "/".join(str(part) for part in getattr(error, "absolute_path", ())) or "(root)"
            if getattr(error, "validator", None) == "required":
                # "'x' is a required property": names the field, quotes no value.
                reasons.append(f"at {where}: {error.message}")
            else:
                rule = f"{getattr(error, 'validator', '?')}={getattr(error, 'validator_value', '?')!r}"
                reasons.append(f"at {where}: violates {rule[:120]}")
        if isinstance(getattr(current, "name", None), str):  # a parameter's name
            reasons.append(f"{type(current).__name__} {current.name!r}")
        for attribute in ("__cause__", "__context__"):
            cause = getattr(current, attribute, None)
            if isinstance(cause, BaseException):
                pending.append(cause)
    if not reasons:
        reasons.append(type(exc).__name__)
    return "; ".join(dict.fromkeys(reasons))[: _MAX_DETAIL * 3]


class NeonSpec:
    """The loaded spec; see the module docstring for use."""

    def __init__(self, document: dict[str, Any], source: Path | None = None) -> None:
        self.document = document
        self.source = source
        self._openapi = OpenAPI.from_dict(document)
        self._finder = APICallPathFinder(self._openapi.spec)

    # -- lookups -----------------------------------------------------------------------------
    def operation_of(self, method: str, path: str) -> str:
        """The spec's ``operationId`` for a call, e.g. ``("GET", "/projects")`` -> ``listProjects``."""
        request = self._request(method, path)
        try:
            found = self._finder.find(request.method, request.host_url + request.path)
        except Exception as exc:
            raise ContractViolation(
                f"{method.upper()} {_api_path(path)}: no such operation in the spec"
            ) from exc
        return str(found.operation["operationId"])

    def response_statuses(self, operation_id: str) -> set[str]:
        """The statuses an operation declares (``"200"``, ``"default"`` ...)."""
        for item in self.document["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    return set(operation.get("responses", {}))
        raise KeyError(operation_id)

    # -- checks ------------------------------------------------------------------------------
    def check_request(
        self,
        method: str,
        path: str,
        *,
        query: QueryParams | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Check a request; ``headers`` default to a bearer token (the spec demands one)."""
        __tracebackhide__ = True  # its arguments may hold passwords: keep them out of reports
        request = self._request(method, path, query=query, body=body, headers=headers)
        try:
            self._openapi.validate_request(request)
        except Exception as exc:
            raise ContractViolation(
                f"request {method.upper()} {_api_path(path)} breaks the spec: {_describe(exc)}"
            ) from None

    def check_response(
        self,
        method: str,
        path: str,
        *,
        status: int,
        body: Any = None,
        query: QueryParams | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Check a response of the operation that ``method`` and ``path`` name."""
        __tracebackhide__ = True  # its arguments may hold passwords: keep them out of reports
        request = self._request(method, path, query=query)
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        response = MockResponse(data, status_code=status, content_type=content_type)
        try:
            self._openapi.validate_response(request, response)
        except Exception as exc:
            raise ContractViolation(
                f"response {status} to {method.upper()} {_api_path(path)} breaks the spec: {_describe(exc)}"
            ) from None

    def check_exchange(self, response: httpx.Response, *, check_request: bool = True) -> None:
        """Check an httpx exchange: the request it answered (optional) and the response."""
        __tracebackhide__ = True  # its arguments may hold passwords: keep them out of reports
        request = response.request
        query = list(request.url.params.multi_items())
        path = request.url.path
        if check_request:
            body = json.loads(request.content) if request.content else None
            self.check_request(request.method, path, query=query, body=body, headers=dict(request.headers))
        self.check_response(
            request.method,
            path,
            status=response.status_code,
            body=response.content,
            query=query,
            content_type=response.headers.get("content-type", "application/json").split(";")[0],
        )

    # -- private -----------------------------------------------------------------------------
    @staticmethod
    def _request(
        method: str,
        path: str,
        *,
        query: QueryParams | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> MockRequest:
        __tracebackhide__ = True
        return MockRequest(
            _HOST_URL,
            method,
            _API_PREFIX + _api_path(path),
            args=ImmutableMultiDict(_pairs(query)),
            headers=dict(headers) if headers is not None else {"Authorization": "Bearer contract-test"},
            data=None if body is None else json.dumps(body).encode(),
        )


@functools.cache
def _load(path: Path) -> NeonSpec:
    with path.open(encoding="utf-8") as handle:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = _string_keys(yaml.load(handle, Loader=loader))
    return NeonSpec(document, source=path)


def load_spec() -> NeonSpec:
    """The Neon API spec (loaded once per process); ``pytest.skip`` if it cannot be found."""
    path, reason = find_spec_file()
    if path is None:
        pytest.skip(reason)
    return _load(path)
