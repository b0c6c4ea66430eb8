"""Reading a Composer environment's image version: which API and which auth path it implies."""

from __future__ import annotations

import pytest

from dagtrigger.composer import ComposerEnvironment
from dagtrigger.errors import ConfigurationError

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
