"""The API key, passwords and connection URIs never reach logs, reprs, errors or metrics."""

from __future__ import annotations

import logging
import traceback
from urllib.parse import quote

import httpx
import pytest

from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, NeonError
from tests.neon import samples
from tests.neon.helpers import API_KEY, Script, answer, create_args, error

CONNECTION = samples.connection()
SECRETS = [
    API_KEY,
    samples.PASSWORD,
    quote(samples.PASSWORD, safe=""),
    CONNECTION["connection_uri"],
    "pooler.us-east-2.aws.neon.tech/appdb",  # the tail of the pooled URI
]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def _everything(error: BaseException) -> str:
    """An error as a log line with its traceback would show it, causes included."""
    return "".join(traceback.format_exception(error))


async def test_a_busy_day_logs_no_secret(
    client: NeonClient, script: Script, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uri = CONNECTION["connection_uri"]
    script.then(
        error(429, "", "too many", headers={"Retry-After": "1"}),
        answer(201, samples.created_project()),
        httpx.ReadTimeout("slow"),
        answer(200, {"uri": uri}),
        error(500, "", f"could not connect to {uri}"),
    )
    created = await client.create_project(**create_args())
    fetched = await client.get_connection_uri(
        samples.PROJECT_ID, database_name="appdb", role_name="appdb_owner"
    )
    assert fetched == uri  # the secret is there for the caller...
    with pytest.raises(NeonError) as caught:
        await client.create_project(**create_args())
    logging.getLogger("test").info("created %r %s; failed: %s", created, created, caught.value)
    assert "retry 1" in caplog.text  # ...the retries were logged...
    assert "HTTP Request: GET" in caplog.text  # ...httpx logged its requests too...
    _assert_clean(caplog.text)  # ...and no log line shows a secret
    _assert_clean(_everything(caught.value))
    labels = " ".join(v for m in metrics.registry.collect() for s in m.samples for v in s.labels.values())
    _assert_clean(labels)


async def test_reprs_of_models_and_client_hide_secrets(client: NeonClient, script: Script) -> None:
    script.then(answer(201, samples.created_project()))
    created = await client.create_project(**create_args())
    for text in (
        repr(created),
        str(created),
        repr(created.connection),
        str(created.connection.model_dump()),
        created.model_dump_json(),
        repr(client),
        repr(vars(client)),
        repr(client._session._http.auth),
    ):
        _assert_clean(text)


async def test_an_answer_that_does_not_parse_does_not_quote_the_password(
    client: NeonClient, script: Script
) -> None:
    body = samples.created_project()
    body["branch"] = "not an object"  # fails validation next to connection_uris full of secrets
    body["connection_uris"][0]["connection_parameters"]["host"] = 42
    script.then(answer(201, body))
    with pytest.raises(NeonError) as caught:
        await client.create_project(**create_args())
    assert caught.value.__cause__ is not None  # the validation error is chained...
    _assert_clean(_everything(caught.value))  # ...without the values it saw


async def test_an_error_message_echoing_credentials_is_masked(client: NeonClient, script: Script) -> None:
    script.then(error(400, "", f"rejected {CONNECTION['connection_uri']}; Authorization: Bearer {API_KEY}"))
    with pytest.raises(NeonError) as caught:
        await client.get_project(samples.PROJECT_ID)
    text = _everything(caught.value)
    for secret in (API_KEY, CONNECTION["connection_uri"], quote(samples.PASSWORD, safe="")):
        assert secret not in text
    assert "postgresql://appdb_owner:***@" in text
