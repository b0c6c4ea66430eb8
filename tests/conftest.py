import os
import sys
from collections.abc import Iterator

import pytest

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")

# Every server a test talks to is on loopback. A developer's proxy settings would send those
# requests to the proxy, since dagtrigger honours them; tests that prove that set their own.
for _name in PROXY_VARIABLES:
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def fresh_boto3_default_session() -> Iterator[None]:
    """Every test starts with no boto3 default session, as a new Lambda container does.

    The default session keeps the first credentials it resolved, so a test that sets its own
    AWS_ACCESS_KEY_ID would otherwise sign with whatever an earlier test left behind.
    """
    _drop_boto3_default_session()
    yield
    _drop_boto3_default_session()


def _drop_boto3_default_session() -> None:
    boto3 = sys.modules.get("boto3")  # not imported here: tests that never touch AWS stay fast
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
