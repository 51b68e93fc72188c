"""The error tree: which status becomes which error, and what an error message may say."""

from __future__ import annotations

import pytest

from tenantdb.neon import (
    NeonAPIError,
    NeonAuthError,
    NeonBadRequestError,
    NeonClientError,
    NeonError,
    NeonLimitError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.neon.errors import MAX_MESSAGE_LENGTH, client_error, shorten


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "", NeonBadRequestError),
        (401, "", NeonAuthError),
        (403, "", NeonAuthError),
        (404, "", NeonNotFoundError),
        (409, "", NeonBadRequestError),
        (422, "", NeonBadRequestError),
        (422, "PROJECTS_LIMIT_EXCEEDED", NeonLimitError),
        (422, "branches_limit_exceeded", NeonLimitError),
        (400, "QUOTA_EXCEEDED", NeonLimitError),
        (402, "", NeonLimitError),
        (406, "", NeonClientError),
    ],
)
def test_each_client_status_maps_to_one_class(
    status: int, code: str, expected: type[NeonClientError]
) -> None:
    error = client_error(status=status, code=code, message="m", route="POST /projects")
    assert type(error) is expected
    assert isinstance(error, NeonAPIError)
    assert (error.status, error.code, error.route) == (status, code, "POST /projects")


def test_limit_error_carries_neons_message() -> None:
    error = client_error(
        status=422,
        code="PROJECTS_LIMIT_EXCEEDED",
        message="user projects limit of 1 exceeded, got 1",
        route="POST /projects",
    )
    assert str(error) == (
        "Neon POST /projects: 422 PROJECTS_LIMIT_EXCEEDED: user projects limit of 1 exceeded, got 1"
    )


def test_transient_error_tells_whether_the_request_may_have_been_processed() -> None:
    error = NeonTransientError(
        status=None, code="", message="ReadTimeout", route="POST /projects", retry_after=3.0, ambiguous=True
    )
    assert isinstance(error, NeonAPIError)
    assert not isinstance(error, NeonClientError)
    assert (error.retry_after, error.ambiguous) == (3.0, True)
    assert str(error) == "Neon POST /projects: ReadTimeout"


def test_operation_failure_is_a_neon_error_outside_the_api_branch() -> None:
    error = NeonOperationFailedError(
        project_id="p-1",
        operation_id="op-1",
        action="apply_config",
        status="failed",
        error="compute failed to start",
    )
    assert isinstance(error, NeonError)
    assert not isinstance(error, NeonAPIError)
    assert str(error) == "Neon operation apply_config (op-1) of project p-1 failed: compute failed to start"


def test_messages_mask_credentials_in_uris_and_headers() -> None:
    text = "cannot reach postgresql://owner:s3cr3t@ep-x.neon.tech/db; sent Authorization: Bearer napi_abc"
    assert shorten(text) == "cannot reach postgresql://owner:***@ep-x.neon.tech/db; sent Authorization: ***"


def test_messages_are_cut_short_and_kept_on_one_line() -> None:
    text = shorten("<html>\n  <body>" + "x" * 5000 + "</body></html>")
    assert len(text) == MAX_MESSAGE_LENGTH
    assert "\n" not in text
    assert text.endswith("…")
