"""The Composer API's description of an environment: what its answers mean, and which API and
which auth path its image version implies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dagtrigger.auth import NoAuth
from dagtrigger.composer import ComposerEnvironment, describe_environment
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    ErrorKind,
    TransientTriggerError,
)
from dagtrigger.http import HttpSession
from tests.unit.stub_airflow import Reply, StubAirflow

NAME = "projects/acme-data/locations/europe-west1/environments/prod"


@pytest.mark.parametrize(
    ("image_version", "composer", "airflow", "api", "auth"),
    [
        ("composer-1.20.12-airflow-1.10.15", 1, 1, "experimental", "iap"),
        ("composer-1.20.12-airflow-2.4.3", 1, 2, "v1", "iap"),
        ("composer-2.9.7-airflow-2.9.3", 2, 2, "v1", "google"),
        ("composer-3-airflow-2.10.5-build.3", 3, 2, "v1", "google"),
        ("composer-3-airflow-3.1.0-build.1", 3, 3, "v2", "google"),
    ],
)
def test_the_image_version_decides_the_api_and_the_auth_path(
    image_version: str, composer: int, airflow: int, api: str, auth: str
) -> None:
    environment = ComposerEnvironment(
        NAME, "https://x.composer.googleusercontent.com", image_version
    )
    assert environment.composer_major == composer
    assert environment.airflow_major == airflow
    assert environment.api_version == api
    assert environment.auth == auth


def test_an_unknown_image_version_says_how_to_configure_by_hand() -> None:
    environment = ComposerEnvironment(NAME, "https://x", "custom-image-7")
    with pytest.raises(ConfigurationError) as caught:
        _ = environment.api_version
    assert "custom-image-7" in str(caught.value) and "AIRFLOW_URL" in str(caught.value)


@pytest.fixture
def composer_api() -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        yield server


def describe(server: StubAirflow) -> ComposerEnvironment:
    return describe_environment(NAME, HttpSession(timeout=2.0), NoAuth(), server.url)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_names_the_grant_whichever_status(composer_api: StubAirflow, status: int) -> None:
    composer_api.always("GET", f"/v1/{NAME}", Reply(status, {"error": {"message": "denied"}}))

    with pytest.raises(AuthorizationError) as caught:
        describe(composer_api)

    assert (caught.value.kind, caught.value.status) == (ErrorKind.AUTHORIZATION, status)
    assert caught.value.problem.startswith("The Composer API refused no authentication access")
    assert caught.value.fix == "grant it roles/composer.user on project acme-data."


def test_an_environment_that_does_not_exist_is_a_configuration_error(
    composer_api: StubAirflow,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        describe(composer_api)  # the stub answers 404 to what it was not told

    assert (caught.value.kind, caught.value.status) == (ErrorKind.CONFIGURATION, 404)
    assert caught.value.fix is not None and "gcloud composer environments list" in caught.value.fix


def test_a_busy_composer_api_is_transient_and_says_how_long_to_wait(
    composer_api: StubAirflow,
) -> None:
    composer_api.always("GET", f"/v1/{NAME}", Reply(429, b"slow down", {"Retry-After": "3"}))

    with pytest.raises(TransientTriggerError) as caught:
        describe(composer_api)

    assert (caught.value.kind, caught.value.retry_after) == (ErrorKind.THROTTLED, 3.0)
    assert str(caught.value) == (
        f"The Composer API answered 429 to describe environment {NAME}: slow down"
    )


def test_a_redirect_from_the_composer_api_is_a_configuration_error(
    composer_api: StubAirflow,
) -> None:
    composer_api.always("GET", f"/v1/{NAME}", Reply(302, None, {"Location": "https://x.example/"}))

    with pytest.raises(ConfigurationError) as caught:
        describe(composer_api)

    assert caught.value.kind is ErrorKind.REDIRECT
    assert "a redirect to https://x.example/" in caught.value.problem
