"""Credentials from AWS Secrets Manager must suit the auth path chosen: a mismatch is a
configuration error naming the secret, found before any request (never an assertion)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dagtrigger import runtime
from dagtrigger.auth import aws_secret
from dagtrigger.errors import ConfigurationError
from dagtrigger.settings import Settings

ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:airflow-AbCdEf"


@pytest.mark.parametrize(
    ("auth", "held", "needed"),
    [
        ("basic", {"token": "t0ken"}, '{"username", "password"}'),
        ("jwt", {"token": "t0ken"}, '{"username", "password"}'),
        ("bearer", {"username": "svc", "password": "pw-123456"}, '{"token"}'),
    ],
)
def test_a_secret_that_does_not_suit_airflow_auth_is_a_configuration_error(
    auth: str, held: Mapping[str, str], needed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_secret, "read_airflow_secret", lambda arn: held)
    settings = Settings.from_env(
        {"AIRFLOW_URL": "http://127.0.0.1:9", "DAG_ID": "etl", "AIRFLOW_AUTH": auth,
         "AIRFLOW_SECRET_ARN": ARN, "AIRFLOW_API_VERSION": "v2"}
    )  # fmt: skip

    with pytest.raises(ConfigurationError) as caught:
        runtime.build_client(settings)

    assert f"AIRFLOW_SECRET_ARN={ARN} holds no {needed}" in str(caught.value)
    assert f"AIRFLOW_AUTH={auth}" in str(caught.value)
