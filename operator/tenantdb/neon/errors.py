"""The errors of the Neon client: one small tree, one table from HTTP status to class.

    NeonError
     ├── NeonAPIError(status, code, message, route)
     │    ├── NeonClientError              4xx: permanent, retrying the same request cannot help
     │    │    ├── NeonBadRequestError     400, 409, 422 ... the request itself was refused
     │    │    ├── NeonAuthError           401, 403: the API key, its scope, or a missing org_id
     │    │    ├── NeonNotFoundError       404
     │    │    └── NeonLimitError          a plan limit or quota (e.g. 422 PROJECTS_LIMIT_EXCEEDED)
     │    └── NeonTransientError           retries exhausted (429, 423, 5xx, network, timeouts);
     │                                     ``retry_after`` and ``ambiguous`` tell the caller what next
     └── NeonOperationFailedError          an asynchronous Neon operation ended failed/cancelled

Messages are built from Neon's ``code`` and ``message`` (cut short, anything that looks
like a credential masked), never from request bodies or headers: the API key and connection
passwords cannot reach a log line, an event or a status through an exception.
"""

from __future__ import annotations

import re

from tenantdb.redact import redact

__all__ = [
    "NeonAPIError",
    "NeonAuthError",
    "NeonBadRequestError",
    "NeonClientError",
    "NeonError",
    "NeonLimitError",
    "NeonNotFoundError",
    "NeonOperationFailedError",
    "NeonTransientError",
    "client_error",
    "shorten",
]

# Long enough for Neon's messages ("user projects limit of 1 exceeded, got 1"), short enough
# that an HTML error page from a proxy cannot flood a log line or a Kubernetes event.
MAX_MESSAGE_LENGTH = 200


def shorten(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """``text`` on one line, credentials masked (``tenantdb.redact``), cut to ``limit`` characters."""
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class NeonError(Exception):
    """Anything the Neon client raises on purpose."""


class NeonAPIError(NeonError):
    """Neon answered with an error, or could not be reached (``status`` is then ``None``)."""

    def __init__(self, *, status: int | None, code: str, message: str, route: str) -> None:
        self.status = status
        self.code = code
        self.message = shorten(message)
        self.route = route  # a template such as "GET /projects/{project_id}", never raw ids
        what = " ".join(str(part) for part in (status, code) if part)
        super().__init__(f"Neon {route}: {what + ': ' if what else ''}{self.message}")


class NeonClientError(NeonAPIError):
    """A 4xx answer: the same request will fail again."""


class NeonBadRequestError(NeonClientError):
    """Neon refused the request as written (400, 409, 422 other than a limit, ...)."""


class NeonAuthError(NeonClientError):
    """The API key is wrong, lacks the scope, or needs an ``org_id`` (401, 403)."""


class NeonNotFoundError(NeonClientError):
    """The project, endpoint or operation does not exist (404)."""


class NeonLimitError(NeonClientError):
    """A plan limit or quota stops the request; raising the limit in Neon fixes it."""


class NeonTransientError(NeonAPIError):
    """Neon stayed unavailable until the retry deadline (or a non-idempotent call got no answer).

    ``retry_after``: seconds Neon asked us to wait (``Retry-After``), when it said.
    ``ambiguous``: a call that must not simply be repeated (``POST /projects``) may have been
    carried out although no success was seen (a timeout or dropped connection after sending,
    a 5xx); the caller must look for what it created before creating it again. Idempotent
    calls are never ambiguous: they were retried, and repeating them is harmless.
    """

    def __init__(
        self,
        *,
        status: int | None,
        code: str,
        message: str,
        route: str,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(status=status, code=code, message=message, route=route)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class NeonOperationFailedError(NeonError):
    """A Neon operation (``create_timeline``, ``apply_config`` ...) ended without success."""

    def __init__(
        self, *, project_id: str, operation_id: str, action: str, status: str, error: str = ""
    ) -> None:
        self.project_id = project_id
        self.operation_id = operation_id
        self.action = action
        self.status = status
        self.error = shorten(error)
        detail = f": {self.error}" if self.error else ""
        super().__init__(f"Neon operation {action} ({operation_id}) of project {project_id} {status}{detail}")


# Neon answers quota and plan limits with codes such as PROJECTS_LIMIT_EXCEEDED (422),
# BRANCHES_LIMIT_EXCEEDED or ..._QUOTA_EXCEEDED; the status alone does not tell them apart
# from an ordinary validation error, the code does.
_LIMIT_CODE = re.compile(r"LIMIT|QUOTA")

_CLIENT_ERRORS: dict[int, type[NeonClientError]] = {
    400: NeonBadRequestError,
    401: NeonAuthError,
    402: NeonLimitError,  # Payment Required: the plan does not allow it
    403: NeonAuthError,
    404: NeonNotFoundError,
    409: NeonBadRequestError,
    422: NeonBadRequestError,
}


def client_error(*, status: int, code: str, message: str, route: str) -> NeonClientError:
    """The permanent error for a 4xx answer (never 423 or 429: those are retried)."""
    cls = NeonLimitError if _LIMIT_CODE.search(code.upper()) else _CLIENT_ERRORS.get(status, NeonClientError)
    return cls(status=status, code=code, message=message, route=route)
