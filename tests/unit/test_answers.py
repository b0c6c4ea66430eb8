"""What an answer means, decided once from its status: the kind of problem, the error's class,
whether it is retried, how long to wait, where a redirect points; and what every error carries."""

from __future__ import annotations

import pytest

from dagtrigger.airflow.answers import Asked, classify, kind_of_status
from dagtrigger.auth.basic import BasicAuth
from dagtrigger.errors import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    DagNotFoundError,
    DagTriggerError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import Response

ASKED = Asked("Airflow at https://airflow.example.com", "trigger DAG 'etl'", BasicAuth("bot", "pw"))


@pytest.mark.parametrize(
    ("status", "kind", "error_class"),
    [
        (301, ErrorKind.REDIRECT, ConfigurationError),
        (302, ErrorKind.REDIRECT, ConfigurationError),
        (307, ErrorKind.REDIRECT, ConfigurationError),
        (308, ErrorKind.REDIRECT, ConfigurationError),
        (400, ErrorKind.REJECTED, PermanentTriggerError),
        (401, ErrorKind.AUTHENTICATION, AuthenticationError),
        (403, ErrorKind.AUTHORIZATION, AuthorizationError),
        (404, ErrorKind.NOT_FOUND, PermanentTriggerError),
        (405, ErrorKind.REFUSED, PermanentTriggerError),
        (409, ErrorKind.REFUSED, PermanentTriggerError),
        (422, ErrorKind.REJECTED, PermanentTriggerError),
        (429, ErrorKind.THROTTLED, TransientTriggerError),
        (500, ErrorKind.SERVER_ERROR, TransientTriggerError),
        (502, ErrorKind.SERVER_ERROR, TransientTriggerError),
        (503, ErrorKind.SERVER_ERROR, TransientTriggerError),
        (504, ErrorKind.SERVER_ERROR, TransientTriggerError),
    ],
)
def test_each_status_family_has_one_kind_and_one_error_class(
    status: int, kind: ErrorKind, error_class: type[DagTriggerError]
) -> None:
    answer = classify(Response(status, b'{"detail": "why"}'))
    error = answer.error_for(ASKED)

    assert answer.kind is kind
    assert type(error) is error_class
    assert (error.kind, error.status) == (kind, status)
    assert error.retryable is answer.retryable is (status == 429 or status >= 500)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_success_has_no_kind_and_is_refused_when_the_caller_cannot_use_it(status: int) -> None:
    answer = classify(Response(status, b""))

    assert answer.kind is None and kind_of_status(status) is None
    assert not answer.retryable
    error = answer.error_for(ASKED)
    assert type(error) is PermanentTriggerError and error.kind is ErrorKind.REFUSED
    assert f"answered {status} to trigger DAG 'etl'" in str(error)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "soon"}, None), ({}, None)],
    ids=["seconds", "unusable", "absent"],
)
@pytest.mark.parametrize("status", [429, 503])
def test_a_transient_answer_keeps_its_retry_after(
    status: int, headers: dict[str, str], seconds: float | None
) -> None:
    error = classify(Response(status, b"busy", headers)).error_for(ASKED)

    assert error.retryable and error.retry_after == seconds
    assert (
        str(error)
        == f"Airflow at https://airflow.example.com answered {status} to trigger DAG 'etl': busy"
    )
    assert error.fix is None


def test_a_refusal_asks_for_no_wait_whatever_its_retry_after() -> None:
    error = classify(Response(403, b"", {"Retry-After": "30"})).error_for(ASKED)

    assert not error.retryable and error.retry_after is None


def test_a_redirect_names_its_location_and_the_fix() -> None:
    answer = classify(Response(302, b"", {"Location": "https://login.example.com/?next=/"}))
    error = answer.error_for(ASKED)

    assert answer.location == "https://login.example.com/?next=/"
    assert error.kind is ErrorKind.REDIRECT and error.status == 302
    assert error.problem.startswith(
        "Airflow at https://airflow.example.com, asked to trigger DAG 'etl', was answered 302, "
        "a redirect to https://login.example.com/?next=/: dagtrigger never follows redirects"
    )
    assert error.fix is not None and error.fix.startswith("Set the URL to the address")
    assert str(error) == f"{error.problem}. {error.fix}"


def test_a_redirect_without_a_location_says_so() -> None:
    error = classify(Response(307, b"")).error_for(ASKED)

    assert "a redirect to (no Location header)" in error.problem


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (401, "Airflow at https://airflow.example.com rejected basic auth as Airflow user 'bot' "
              "(401: Unauthorized)"),
        (403, "Airflow at https://airflow.example.com refused basic auth as Airflow user 'bot' "
              "permission to trigger DAG 'etl' (403: Unauthorized)"),
    ],
)  # fmt: skip
def test_a_refusal_names_the_identity_and_its_hint_is_the_fix(status: int, problem: str) -> None:
    assert ASKED.auth is not None
    error = classify(Response(status, b'{"detail": "Unauthorized"}')).error_for(ASKED)

    assert error.problem == problem
    assert error.fix == ASKED.auth.hint(status)
    assert str(error) == f"{problem}. {ASKED.auth.hint(status)}"


def test_the_caller_names_a_narrower_kind_and_the_class_follows_it() -> None:
    answer = classify(Response(404, b'{"detail": "DAG with dag_id: \'etl\' not found"}'))
    error = answer.error(
        f"DAG 'etl' was not found ({answer.detail})",
        "check the DAG id.",
        kind=ErrorKind.DAG_NOT_FOUND,
    )

    assert type(error) is DagNotFoundError
    assert (error.kind, error.status, error.fix) == (
        ErrorKind.DAG_NOT_FOUND,
        404,
        "check the DAG id.",
    )
    assert (
        str(error)
        == "DAG 'etl' was not found (DAG with dag_id: 'etl' not found): check the DAG id."
    )


def test_problem_and_fix_are_redacted_each_and_in_the_message() -> None:
    error = ConfigurationError(
        'the server echoed {"password": "hunter2-secret"}',
        fix="check Authorization: Bearer abc.def-123",
    )

    for text in (error.problem, error.fix or "", str(error)):
        assert "hunter2-secret" not in text and "abc.def-123" not in text
        assert "[redacted]" in text


def test_an_error_that_rewraps_one_of_its_class_keeps_what_that_one_decided() -> None:
    throttled = TransientTriggerError(
        "Airflow answered 429",
        fix="lower DAGTRIGGER_RATE_LIMIT",
        kind=ErrorKind.THROTTLED,
        status=429,
    )
    try:
        try:
            raise throttled
        except TransientTriggerError as exc:
            raise TransientTriggerError(f"triggering: {exc} (gave up)") from exc
    except TransientTriggerError as gave_up:
        assert (gave_up.kind, gave_up.status, gave_up.fix) == (
            ErrorKind.THROTTLED,
            429,
            "lower DAGTRIGGER_RATE_LIMIT",
        )

    try:
        raise ConfigurationError("the proxy is misconfigured") from throttled
    except ConfigurationError as other_class:
        assert (other_class.kind, other_class.status, other_class.fix) == (
            ErrorKind.CONFIGURATION,
            None,
            None,
        )


def test_an_error_raised_from_itself_is_its_own_meaning() -> None:
    error = TransientTriggerError("no answer", kind=ErrorKind.TIMEOUT)
    try:
        raise error from error
    except TransientTriggerError as raised:
        assert raised.kind is ErrorKind.TIMEOUT and raised.fix is None
